"""One training at a time per run directory: `RUN_DIR/train.lock`, holding the owner's PID.

Two trainings writing one run directory would interleave `metrics.jsonl` and overwrite each
other's checkpoints, so every training command takes this lock first (rank 0 only under DDP)
and refuses to start while another live process holds it. Where `fcntl` exists the file is also
`flock`ed: the kernel drops that lock when its process dies, however it dies, so a left-over
file is never mistaken for a live owner (nor is a reused PID). Elsewhere the PID alone decides:
a lock whose PID is no longer running is stale and taken over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from unified_latents.runs.directory import RunError

LOCK_FILE = "train.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def _owner(path: Path) -> tuple[int, str]:
    """(PID, host) written in a lock file; (0, '') when unreadable or cut short."""
    try:
        pid, _, host = path.read_text().strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return 0, ""


class RunLock:
    """Exclusive use of a run directory; a context manager. `acquire` raises `RunError` (one
    line naming the owner's PID) while another live process holds it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None
        self._created_dir = False

    def acquire(self) -> RunLock:
        try:
            self.run_dir.mkdir(parents=True)
            self._created_dir = True
        except FileExistsError:
            pass
        for _ in range(100):  # retried only when another process replaced the file meanwhile
            if self._try_acquire():
                return self
        raise RunError(f"cannot lock {self.run_dir}: {self.path} keeps changing")

    def _refuse(self, pid: int, host: str) -> RunError:
        owner = f"PID {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
        return RunError(
            f"{self.run_dir} is in use by another training ({owner}, see {self.path}); wait for "
            "it to finish or stop it, or train in another --run-dir"
        )

    def _try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            pid, host = _owner(self.path)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise self._refuse(pid, host) from None
                # the holder may have released and deleted the file between our open and flock
                if os.fstat(fd).st_ino != _inode(self.path):
                    os.close(fd)
                    return False
            elif pid and pid != os.getpid() and host == socket.gethostname() and pid_alive(pid):
                raise self._refuse(pid, host)
            if pid and pid != os.getpid():
                warnings.warn(
                    f"taking over the stale lock {self.path} of PID {pid}, which no longer runs "
                    "this training",
                    stacklevel=3,
                )
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            os.fsync(fd)
        except BaseException:
            _close_quietly(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Delete the lock file, then unlock; and remove the run directory if the lock created
        it and nothing else was written (a training that failed its checks leaves no trace)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            _close_quietly(self._fd)  # closing drops the flock
            self._fd = None
        if self._created_dir:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only succeeds when empty

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -1


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
