"""Working-time compliance and pay categories from worked days: pure functions, no SQL, no HTTP.

The rules are data (packs/*.toml: eu, de, ru, or a user's copy); `find_violations` judges a
month of days against a pack, `pay_categories` splits the worked time the way payroll imports it.
The database and the `report compliance` command feed these later.
"""

from __future__ import annotations

from poller.compliance.days import DayKind, DayStatus, Interval, Norms, WorkedDay
from poller.compliance.engine import find_violations
from poller.compliance.packs import Rule, RulePack, load_pack, parse_pack
from poller.compliance.pay import PayCategories, pay_categories
from poller.compliance.violation import Month, Violation

__all__ = [
    "DayKind",
    "DayStatus",
    "Interval",
    "Month",
    "Norms",
    "PayCategories",
    "Rule",
    "RulePack",
    "Violation",
    "WorkedDay",
    "find_violations",
    "load_pack",
    "parse_pack",
    "pay_categories",
]
