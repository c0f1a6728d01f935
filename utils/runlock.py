"""One training per run folder: the lock a training holds in its folder while it runs.

``RUN/train.lock`` holds the owner's pid, host and process start time. It is created
atomically before anything is written in the folder and removed when the run ends; a second
training into the folder is refused while its owner runs, and a lock left by a run that was
killed is taken over with a message (:class:`RunLock`, used by :func:`utils.training.train`).

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from utils.errors import OptionError, ProjectError

__all__ = ["LOCK_NAME", "RunLock"]


#: The lock file that a training holds in its run folder while it runs.
LOCK_NAME = "train.lock"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux: clock ticks since boot), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_alive(info: dict[str, Any]) -> bool | None:
    """Whether the process that wrote a lock still runs: ``None`` when it cannot be known."""
    if os.name != "posix" or info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        pass
    started = info.get("process_start")
    return not (started is not None and _process_start(pid) not in (None, started))


class RunLock:
    """The lock of a run folder: ``RUN/train.lock`` holds the owner's pid and host name.

    Created atomically (``O_CREAT | O_EXCL``) before anything is written in the folder, removed
    when the run ends (normally, by an error or by Ctrl-C). A second training into a folder
    whose owner still runs is refused; a lock whose owner no longer runs on this host (a run
    that was killed) is taken over, with a message.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        path: The lock file.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._token = uuid.uuid4().hex
        self._held = False

    def _read(self) -> tuple[dict[str, Any] | None, str]:
        """The lock's content (``None`` when unreadable) and its text; waits out a half-written
        lock (the owner writes its pid just after creating the file)."""
        text = ""
        for _ in range(10):
            try:
                text = self.path.read_text()
            except FileNotFoundError:
                return {}, ""
            except OSError:
                text = ""
            try:
                info = json.loads(text)
                if isinstance(info, dict):
                    return info, text
            except ValueError:
                pass
            time.sleep(0.1)
        return None, text

    def acquire(self, say: Callable[[str], None] = print) -> RunLock:
        """Take the lock, or refuse.

        Args:
            say: Where the one-line message of a taken-over stale lock goes.

        Returns:
            This lock, held.

        Raises:
            OptionError: Another training, still running (or on another host, so that it
                cannot be checked), holds the folder: naming the folder and the owner's pid.
            ProjectError: The lock file cannot be created.
        """
        folder = self.path.parent
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            except OSError as exc:
                raise ProjectError(self.path, f"cannot create the run's lock file "
                                              f"({exc.strerror or exc})") from None
            else:
                info = {"pid": os.getpid(), "host": socket.gethostname(),
                        "process_start": _process_start(os.getpid()),
                        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "token": self._token}
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps(info))
                self._held = True
                return self
            info, text = self._read()
            if info == {}:  # removed meanwhile: try again
                continue
            if info is None:  # not a lock of ours, or its owner died while creating it
                age = time.time() - self.path.stat().st_mtime if self.path.exists() else 0.0
                if age < 10:
                    raise OptionError("--out", f"{folder} is being claimed by another training "
                                               f"({self.path} is being written); try again")
                owner, alive = "an unreadable lock", False
            else:
                owner = f"pid {info.get('pid')} on {info.get('host')}"
                alive = _owner_alive(info)
            if alive is None:
                raise OptionError("--out", f"{folder} is in use by another training ({owner}, "
                                           f"since {info.get('started', '?')}), which cannot be "
                                           f"checked from this host; if it has ended, delete "
                                           f"{self.path}")
            if alive:
                raise OptionError("--out", f"{folder} is in use by another training ({owner}, "
                                           f"since {info.get('started', '?')}): wait for it to "
                                           "end, or choose another folder")
            try:  # stale: remove it, unless another process replaced it meanwhile
                if self.path.read_text() == text:
                    self.path.unlink()
            except FileNotFoundError:
                pass
            say(f"took over {self.path}: its owner ({owner}) no longer runs")
        raise OptionError("--out", f"{folder}: cannot take {self.path} (other trainings keep "
                                   "claiming it)")

    def release(self) -> None:
        """Remove the lock if this object still holds it."""
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(OSError):
            info = json.loads(self.path.read_text())
            if isinstance(info, dict) and info.get("token") == self._token:
                self.path.unlink()
