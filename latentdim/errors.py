"""The one exception type that user-facing problems raise.

Library code raises :class:`LatentdimError` with a message a user can act on; only the CLI turns
it into a red line on stderr and exit code 2.
"""


class LatentdimError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""
