"""Errors a user can cause. The CLI prints them without a traceback."""


class RdferError(Exception):
    """A problem with the user's input (files, labels, options, checkpoints).

    The message must say what was wrong, where (file, line, clip id) and what
    to do about it.
    """
