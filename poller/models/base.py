"""What every table shares: the constraint naming convention, UTC instants, status column types."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

from poller.fields import StatusField

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC instant on every backend.

    PostgreSQL keeps it as timestamptz; SQLite has no time zones, so the value is stored as
    naive UTC and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def status_column_type(spec: StatusField) -> TypeEngine[Any]:
    """The SQL type that keeps one field of fields.STATUS_FIELDS."""
    if spec.kind == "text":
        return String(spec.length)
    return _STATUS_TYPES[spec.kind]()


_STATUS_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "timestamp": UTCDateTime,
    "hms-duration": Integer,
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date-derived": Date,
    "int-list": JSON,
}


def field_columns(
    fields: tuple[StatusField, ...], key: str, required: tuple[str, ...] = ()
) -> list[Column[Any]]:
    """Columns for declared fields; `key` (the Bitrix24 id) is part of the primary key."""
    return [
        Column(
            spec.column,
            status_column_type(spec),
            primary_key=spec.column == key,
            nullable=spec.column != key and spec.column not in required,
        )
        for spec in fields
    ]
