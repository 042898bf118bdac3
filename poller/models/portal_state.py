"""What a portal keeps between processes and replicas: its newest OAuth pair, its periodic tasks,
the version of its directory."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from poller.models.base import Base, UTCDateTime


class OAuthToken(Base):
    """The newest OAuth token pair of a portal; it wins over the config's seed tokens."""

    __tablename__ = "oauth_tokens"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PortalTask(Base):
    """When a portal's periodic task ('directory', 'reconcile') was last tried and last done.

    In the database, not in a process: `poll` under a timer, `run`, and every replica then
    agree on when the directory refresh and the daily reconcile are due. `last_error` is the
    last failure's one line (free of secrets), cleared when the task succeeds.
    """

    __tablename__ = "portal_tasks"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_tried_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


class DirectoryVersion(Base):
    """A token that changes with every change of a portal's users or departments.

    A process keeps the directory facts a write of snapshots needs (zones, names) between
    writes, and trusts them only while this token is the one it read them under. Triggers on
    `users` and `departments` (revision 0011) replace it in the transaction of any insert,
    update or delete: a refresh by any process or replica, or a hand edit.
    """

    __tablename__ = "directory_versions"

    portal: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))  # random hex: a database made anew never repeats one
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the database's clock at the change
