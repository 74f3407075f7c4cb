"""The one exception type that user-facing problems raise.

Library code raises :class:`LatentdimError` with a message a user can act on; only the CLI turns
it into a red line on stderr and exit code 2.
"""


class LatentdimError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class TrainingInterrupted(Exception):
    """Training stopped early because ``should_stop`` said so (the CLI: SIGINT or SIGTERM).

    Attributes:
        step: the last completed step.
        checkpoint: the checkpoint that a resume continues from, or None without an output folder.
    """

    def __init__(self, step: int, checkpoint: str | None) -> None:
        where = f"checkpoint at {checkpoint}" if checkpoint else "no checkpoint (no output folder)"
        super().__init__(f"training interrupted after step {step}; {where}")
        self.step = step
        self.checkpoint = checkpoint
