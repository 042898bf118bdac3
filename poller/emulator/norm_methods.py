"""The methods a working-time report reads besides the work day: norms, schedules, calendar, absences.

`timeman.settings` and `timeman.schedule.get` need the `timeman` scope (which every emulated
webhook and app has); `calendar.settings.get` and `calendar.accessibility.get` need
`calendar`, which `EmulatorSettings.calendar_scope = False` takes away: those calls then get
`insufficient_scope`, alone or inside a batch. Errors and empty answers are the documented ones:
an unknown user is "User not found", an unknown schedule id an empty array, a missing
parameter of `calendar.accessibility.get` a 400 naming it.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from poller.emulator import absences, norms, portal_calendar, staff
from poller.emulator.wire import Answer, as_int, envelope, lookup

if TYPE_CHECKING:
    from poller.emulator.server import Emulator

INSUFFICIENT_SCOPE = envelope(
    "insufficient_scope", "The request requires higher privileges than provided by the webhook token"
)
ACCESSIBILITY = "calendar.accessibility.get"
TUESDAY = 1
_OVERRIDES: WeakKeyDictionary[Emulator, dict[tuple[str, int], Any]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def override(emulator: Emulator, method: str, result: Any, user_id: int = 0) -> None:
    """Answer `method` with `result` from now on, a test's odd values: for `user_id`, its
    timeman.settings result or its list of calendar.accessibility.get events."""
    with _LOCK:
        _OVERRIDES.setdefault(emulator, {})[(method, user_id)] = result


def _overridden(emulator: Emulator, method: str, user_id: int = 0) -> Any:
    with _LOCK:
        return _OVERRIDES.get(emulator, {}).get((method, user_id))


def timeman_settings(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """One user's norms (USER_ID, default the caller); ADMIN in the caller's own answer only."""
    caller = emulator.settings.webhook_user
    raw_user = lookup(params, "USER_ID")
    user_id = as_int(raw_user, -1) if raw_user not in (None, "") else caller
    if not emulator.world.exists(user_id) or emulator.is_fired(user_id):
        return 400, envelope("", "User not found")
    admin = emulator.settings.admin if user_id == caller else None
    result = _overridden(emulator, "timeman.settings", user_id)
    return 200, {"result": norms.settings_result(user_id, admin) if result is None else result}


def schedule_get(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """A schedule by `id`; an unknown or missing id answers an empty array, as the portal does."""
    schedule = norms.SCHEDULES.get(as_int(lookup(params, "id"), 0))
    return 200, {"result": schedule if schedule is not None else []}


def calendar_settings_get(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """The portal's calendar settings (no parameters)."""
    if not emulator.settings.calendar_scope:
        return 403, INSUFFICIENT_SCOPE
    result = _overridden(emulator, "calendar.settings.get")
    return 200, {"result": portal_calendar.settings_result() if result is None else result}


def accessibility_get(emulator: Emulator, params: dict[str, Any]) -> Answer:
    """Each asked user's events touching `from`..`to` (dates, both included): `{"<id>": [...]}`."""
    if not emulator.settings.calendar_scope:
        return 403, INSUFFICIENT_SCOPE
    users = _user_ids(lookup(params, "users"))
    first, last = _date(lookup(params, "from")), _date(lookup(params, "to"))
    for name, value in (("users", users), ("from", first), ("to", last)):
        if not value:
            description = f'The required parameter "{name}" for the method "{ACCESSIBILITY}" is not set'
            return 400, envelope("", description)
    assert first is not None and last is not None
    world = emulator.world
    result: dict[str, list[dict[str, Any]]] = {}
    for user_id in users:
        known = world.exists(user_id) and not emulator.is_fired(user_id)
        result[str(user_id)] = _events(emulator, user_id, first, last) if known else []
    return 200, {"result": result}


def _events(emulator: Emulator, user_id: int, first: date, last: date) -> list[dict[str, Any]]:
    """Absences, then the weekly meetings on Tuesdays the user works, in time order."""
    overridden = _overridden(emulator, ACCESSIBILITY, user_id)
    if overridden is not None:
        return list(overridden)
    offset = emulator.world.tz_offset(user_id)
    zone = staff.ZONE_NAMES.get(offset) or "UTC"
    found = [
        (a.first, absences.absence_event(a, offset, zone))
        for a in absences.absences_between(user_id, first, last)
    ]
    day = first + timedelta(days=(TUESDAY - first.weekday()) % 7)
    while day <= last:
        if emulator.world.workday(user_id, day) is not None:
            found.append((day, absences.meeting_event(user_id, day, offset, zone)))
        day += timedelta(days=7)
    return [event for _, event in sorted(found, key=lambda pair: (pair[0], pair[1]["DATE_FROM_TS_UTC"]))]


def _user_ids(value: Any) -> list[int]:
    """`users` as a JSON array, PHP form fields (`users[0]=1`: a dict) or one id."""
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        value = [] if value in (None, "") else [value]
    ids = [as_int(v, -1) for v in value]
    return [i for i in ids if i > 0]


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


METHODS = {
    "timeman.settings": timeman_settings,
    "timeman.schedule.get": schedule_get,
    "calendar.settings.get": calendar_settings_get,
    ACCESSIBILITY: accessibility_get,
}
