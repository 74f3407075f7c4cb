"""SPEC §2's mask thresholds, in a module without torch (the report reads them too)."""

#: A dimension counts as active when its mask value is at least this.
ACTIVE_THRESHOLD = 0.1
#: An active dimension below this is still undecided.
DECIDED_THRESHOLD = 0.9
