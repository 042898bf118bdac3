"""The portal's directory: `user.get` and `department.get` as last refreshed."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from poller.fields import DEPARTMENT_FIELDS, USER_FIELDS
from poller.models.base import Base, UTCDateTime, field_columns

# The directory: `user.get` and `department.get` as last refreshed. A user missing from a
# full refresh is kept with active = false: history still names them.
users_table = Table(
    "users",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *field_columns(USER_FIELDS, "user_id"),
    Column("updated_at", UTCDateTime(), nullable=False),  # the refresh that last listed (or missed) them
)

departments_table = Table(
    "departments",
    Base.metadata,
    Column("portal", String(200), primary_key=True),
    *field_columns(DEPARTMENT_FIELDS, "department_id"),
)
