"""The checks of the command line's option values: each turns a word into a typed value or
raises argparse.ArgumentTypeError, which argparse shows as a usage error (exit 2)."""

from __future__ import annotations

import argparse
from datetime import date, timedelta


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None


def sha256_digest(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a SHA-256 digest (64 hexadecimal digits)")
    return value


def database_url(text: str) -> str:
    from poller import storage

    if not storage.is_database_url(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a database URL (sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
        )
    return text


def age(text: str) -> timedelta:
    units = {"h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age such as 400d, 12w or 36h")
    try:
        return timedelta(seconds=int(number) * units[unit])
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long an age") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 1")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port from 0 to 65535")
    return value


def user_ids(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of user ids such as 1,5,7")
    return tuple(int(part) for part in parts)
