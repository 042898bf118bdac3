"""The checks of the methods the norms refresh reads, for `check`: the rights each needs and what is missing.

- `timeman.settings` and `timeman.schedule.get` need the `timeman` scope (and, for another
  user's norms, the work-time administrator's right that reading their status needs);
- `calendar.settings.get` and `calendar.accessibility.get` need the `calendar` scope.
None of them stops polling: a missing one is a warning naming what is not read. Up to four
requests, plus one per configured schedule.
"""

from __future__ import annotations

from poller.bitrix import PortalClient
from poller.bitrix.calendar import ACCESSIBILITY_METHOD
from poller.bitrix.calendar import SETTINGS_METHOD as CALENDAR_METHOD
from poller.bitrix.norms import SCHEDULE_METHOD, SETTINGS_METHOD
from poller.errors import V3_PREFIX, BitrixError

# (check, outcome, detail, advice), as check_portal.Finding takes them
Found = tuple[str, str, str, str]
STEPS = ("norms", "schedules", "scope calendar", "absences")
SCOPE_CODES = {"INSUFFICIENT_SCOPE", V3_PREFIX + "INSUFFICIENTSCOPEEXCEPTION"}


def check_norm_methods(client: PortalClient, user_id: int | None, holder: str) -> list[Found]:
    """The four checks above for `user_id` (the user whose norms and absences are tried;
    None: the caller); `holder` is "webhook" or "application", for the advice."""
    found = [_settings(client, user_id, holder), _schedules(client, holder)]
    calendar = _calendar(client, holder)
    found.append(calendar)
    if calendar[1] == "ok":
        found.append(_absences(client, user_id))
    else:
        found.append(("absences", "skipped", "needs the calendar scope (see above)", ""))
    return found


def _scope(exc: BitrixError) -> bool:
    return exc.code.upper() in SCOPE_CODES


def _settings(client: PortalClient, user_id: int | None, holder: str) -> Found:
    params = {} if user_id is None else {"USER_ID": user_id}
    whose = "the caller" if user_id is None else f"user {user_id}"
    try:
        client.call(SETTINGS_METHOD, params)
    except BitrixError as exc:
        if _scope(exc):
            advice = f"add the timeman (Work time) scope to the {holder}"
        elif exc.code.upper() in {"ACCESS_DENIED", "NO_ACCESS_TO_USER"}:
            advice = "make the webhook's or app's user a work time administrator"
        else:
            advice = "see the portal's message"
        return ("norms", "warning", f"{SETTINGS_METHOD}: {exc.message}", advice + "; norms are not read")
    return ("norms", "ok", f"{SETTINGS_METHOD} answers for {whose} (scope timeman)", "")


def _schedules(client: PortalClient, holder: str) -> Found:
    ids = client.portal.schedules_to_read()
    if not ids:
        return ("schedules", "skipped", "no schedule_ids configured", "")
    missing = []
    for schedule_id in ids:
        try:
            result = client.call(SCHEDULE_METHOD, {"id": schedule_id}).get("result")
        except BitrixError as exc:
            advice = (
                f"add the timeman (Work time) scope to the {holder}"
                if _scope(exc)
                else "see the portal's message"
            )
            return ("schedules", "warning", f"{SCHEDULE_METHOD}: {exc.message}", advice)
        if result in ([], None, {}):
            missing.append(schedule_id)
    if missing:
        listed = ", ".join(str(i) for i in missing)
        advice = "fix schedule_ids or the schedules map (the ids are in the schedule's address in Bitrix24)"
        return ("schedules", "warning", f"the portal has no schedule {listed}", advice)
    return ("schedules", "ok", f"{SCHEDULE_METHOD} answers for {', '.join(map(str, ids))}", "")


def _calendar(client: PortalClient, holder: str) -> Found:
    try:
        client.call(CALENDAR_METHOD, {})
    except BitrixError as exc:
        if not _scope(exc):
            return (
                "scope calendar",
                "warning",
                f"{CALENDAR_METHOD}: {exc.message}",
                "see the portal's message",
            )
        fallback = (
            f"holidays of {client.portal.holidays_country} (holidays package) stand in"
            if client.portal.holidays_country
            else "set holidays_country to have public holidays"
        )
        advice = f"add the calendar (Calendar) scope to the {holder}; without it no absences are read"
        advice += f" ({fallback})"
        return ("scope calendar", "warning", exc.message, advice)
    return ("scope calendar", "ok", f"{CALENDAR_METHOD} answers", "")


def _absences(client: PortalClient, user_id: int | None) -> Found:
    if user_id is None:
        return ("absences", "skipped", "no user to ask about", "")
    today = client.clock.now().date().isoformat()
    params = {"users": [user_id], "from": today, "to": today}
    try:
        client.call(ACCESSIBILITY_METHOD, params)
    except BitrixError as exc:
        return ("absences", "warning", f"{ACCESSIBILITY_METHOD}: {exc.message}", "see the portal's message")
    return ("absences", "ok", f"{ACCESSIBILITY_METHOD} answers for user {user_id}", "")
