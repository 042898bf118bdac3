"""How replicas are named in PostgreSQL, and the advisory lock key of each portal."""

from __future__ import annotations

import hashlib
import os
import socket

APPLICATION_PREFIX = "timeman-poller:"
# PostgreSQL keeps 63 bytes of application_name; the replica's name gets what the prefix leaves.
_NAME_LIMIT = 63 - len(APPLICATION_PREFIX)


def default_replica_name() -> str:
    """`<hostname>-<pid>`: unique among live processes, readable in `status`."""
    return f"{socket.gethostname()}-{os.getpid()}"


def clean_replica_name(name: str | None) -> str:
    """A name PostgreSQL keeps whole in application_name: printable ASCII, at most 48 characters.

    The pid stays at the end when a long host name has to be cut.
    """
    name = name or default_replica_name()
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in name).strip() or default_replica_name()
    if len(cleaned) > _NAME_LIMIT:
        head, sep, tail = cleaned.rpartition("-")
        keep = _NAME_LIMIT - len(sep + tail)
        cleaned = head[:keep] + sep + tail if sep and keep > 0 else cleaned[:_NAME_LIMIT]
    return cleaned


def portal_lock_key(portal: str) -> int:
    """The advisory lock key of `portal`: 64 bits of a hash of its name, signed as PostgreSQL wants."""
    digest = hashlib.blake2b(f"timeman-poller portal {portal}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def like_prefix() -> str:
    """A LIKE pattern for the application_name of every replica."""
    return APPLICATION_PREFIX.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
