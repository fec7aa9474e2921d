"""Errors a user can cause. The CLI prints them without a traceback."""


class RdferError(Exception):
    """A problem with the user's input (files, labels, options, checkpoints).

    The message must say what was wrong, where (file, line, clip id) and what
    to do about it.
    """


class WriteError(RdferError):
    """A file could not be written (a full disk, no permission, a link where a file should be): `path` and
    `reason` (e.g. "no space left on device") are kept for callers that say more about what was lost."""

    def __init__(self, message: str, path=None, reason: str = ""):
        super().__init__(message)
        self.path, self.reason = path, reason


class NonFiniteLoss(RdferError):
    """The training loss became nan or inf at `step` (1-based, in the epoch): the weights are no longer usable."""

    def __init__(self, value: float, step: int):
        super().__init__(f"the loss became {value} at step {step}")
        self.value, self.step = value, step
