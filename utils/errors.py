"""The project's one error type: what was refused (a file or an option) and why.

Every refusal of the collection is a :class:`ProjectError` or a subclass of it, so a command
line can catch one type, print ``"<what>: <reason>"`` and exit non-zero, and a notebook shows
one clear line instead of a traceback from deep inside a library:

* :class:`OptionError`: an invalid command-line option or configuration value, raised before
  any data is loaded;
* :class:`utils.audio.AudioError`: an audio file that cannot be used;
* :class:`utils.checkpoint.CheckpointError`: a checkpoint that cannot be used.

A training stopped by Ctrl-C is not a refusal: :class:`TrainingInterrupted` is a
``KeyboardInterrupt`` (so it still stops every loop above it) that says where the run's state
was saved and how to continue; ``python -m utils.train`` prints it and exits with status 130.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os

__all__ = ["ProjectError", "OptionError", "TrainingInterrupted"]


class ProjectError(Exception):
    """A refusal of the project, naming the file or option and the reason.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        path: What was refused: a file path, or an option such as ``"--batch-size"``.
        reason: A short human-readable reason.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OptionError(ProjectError, ValueError):
    """An invalid option or configuration value (checked before any data loads).

    Notebook: notebooks/02_vq_vae.ipynb
    """


class TrainingInterrupted(KeyboardInterrupt):
    """A training stopped by Ctrl-C, after its state was saved (or not: the message says).

    A ``KeyboardInterrupt``, not an ``Exception``: code that catches errors to go on with the
    next item does not swallow the user's Ctrl-C.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        path: The checkpoint that holds the state to resume from (``RUN/last.pt``).
        step: The last completed step.
        reason: The one-line message.
    """

    def __init__(self, path: str | os.PathLike, step: int, reason: str) -> None:
        self.path = str(path)
        self.step = step
        self.reason = reason
        super().__init__(reason)
