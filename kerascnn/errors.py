"""Errors that mean "the user asked for something wrong", as opposed to a bug.

The CLI prints these as one `Error: ...` line and exits with status 2; anything else is a
bug and keeps its traceback. Each subclasses the built-in exception a Python caller would
expect (``ValueError`` for a bad name or shape, ``FileNotFoundError`` for a missing file).
"""


class KerasCNNError(Exception):
    """Base class for user-facing errors."""


class UnknownNameError(KerasCNNError, ValueError):
    """A model, dataset or optimiser name that is not registered."""


class InvalidArgumentError(KerasCNNError, ValueError):
    """An argument with a bad value: input too small, unknown option, bad config field."""


class MissingFileError(KerasCNNError, FileNotFoundError):
    """A file or directory the user named does not exist or is not what it should be."""


class ExportError(KerasCNNError, RuntimeError):
    """An export that could not be completed; nothing partial is left behind."""


class TrainingDivergedError(KerasCNNError, ArithmeticError):
    """The loss became NaN or infinite (a learning rate too high, usually)."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (TensorFlow's and Keras's run to pages), or its
    class name when it has none: what a one-line ``Error:`` can quote."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
