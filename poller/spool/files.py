"""The spool's files: the lock that keeps a second poller out, appends that land whole or not
at all, and replacing a file so that a crash leaves the old one or the new one."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from poller.errors import ConfigError


class SpoolLocked(ConfigError):
    """Another poller holds the spool file; two pollers must not share one."""


def sibling(path: Path, suffix: str) -> Path:
    """`<path><suffix>`: the lock, dead-letter, unreadable and token files live beside the spool."""
    return path.with_name(path.name + suffix)


def take_lock(path: Path) -> int:
    """Hold `<path>.lock` (flock, exclusive) and return its descriptor; write our pid in it."""
    lock_path = sibling(path, ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        writable = True
    except OSError:
        fd = os.open(lock_path, os.O_RDONLY)  # a read-only place still lets us lock an existing file
        writable = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        by = f"process {holder}" if holder else "another process"
        raise SpoolLocked(
            f"spool {path} is in use by {by} (it holds {lock_path}); "
            "give each poller its own storage.spool_path"
        ) from None
    except OSError:
        os.close(fd)
        raise
    if writable:
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def append_to(path: Path, data: bytes, *, sync: bool) -> None:
    """Append `data` whole or not at all: a failed write is cut off again."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        except OSError:
            with suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable (where the platform allows it)."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def replace_file(path: Path, lines: Iterable[bytes]) -> None:
    """Make `path` hold `lines` (remove it when there are none), atomically and durably.

    The new file is written beside it and renamed over it. A file is written even when
    there are no lines: it proves the directory takes files.
    """
    temporary = sibling(path, ".tmp")
    wrote = False
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # an older temporary file may have had other modes
            for line in lines:
                handle.write(line)
                wrote = True
            handle.flush()
            os.fsync(handle.fileno())
        if wrote:
            os.replace(temporary, path)
        else:
            path.unlink(missing_ok=True)
            temporary.unlink()
    except OSError:
        with suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
