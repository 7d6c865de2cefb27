"""The response promise: when a ticket is due.

Reads the ``[sla]`` settings and nothing else. Calendar mode counts every hour,
as the service standard words the 1x24-hour promise. Working-hours mode counts
only the office's opening hours on working days, skipping public holidays, in
the office's time zone. Results are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from mailbot.policy import OfficeHoursConfig, SlaConfig

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A promise longer than this many days of closed office is a configuration error.
_SEARCH_DAYS = 3660


def due_time(
    received_at: datetime, response_hours: float, sla: SlaConfig, timezone: str
) -> datetime:
    """When a ticket received at ``received_at`` must have its response."""
    if received_at.tzinfo is None:
        raise ValueError("due_time needs a timezone-aware datetime")
    span = timedelta(hours=response_hours)
    if sla.mode == "calendar":
        return received_at.astimezone(UTC) + span
    return _add_working_time(received_at, span, sla, ZoneInfo(timezone))


def time_left(
    now: datetime, due_at: datetime, sla: SlaConfig, timezone: str
) -> timedelta:
    """The promise's time from ``now`` to the due time: the office hours left
    in working-hours mode, so a reminder says what staff really have. With the
    two swapped, how late a ticket is, on the same clock."""
    if due_at <= now:
        return timedelta(0)
    if sla.mode == "calendar":
        return due_at - now

    left = timedelta(0)
    zone = ZoneInfo(timezone)
    for opens, closes in _open_windows(now.astimezone(zone).date(), sla, zone):
        if opens >= due_at:
            break
        begin, end = max(opens, now), min(closes, due_at)
        if end > begin:
            left += end - begin
    return left


def _add_working_time(
    start: datetime, span: timedelta, sla: SlaConfig, zone: ZoneInfo
) -> datetime:
    left = span
    local = start.astimezone(zone)
    for opens, closes in _open_windows(local.date(), sla, zone):
        begin = max(opens, local)
        if begin >= closes:
            continue
        if begin + left <= closes:
            return (begin + left).astimezone(UTC)
        left -= closes - begin
    raise ValueError("no working hours found within ten years")


def _open_windows(
    first: date, sla: SlaConfig, zone: ZoneInfo
) -> Iterator[tuple[datetime, datetime]]:
    for offset in range(_SEARCH_DAYS):
        day = first + timedelta(days=offset)
        hours = _hours_on(day, sla.office_hours)
        if hours is None or _is_holiday(day, sla):
            continue
        opens, closes = hours
        yield (
            datetime.combine(day, opens, tzinfo=zone),
            datetime.combine(day, closes, tzinfo=zone),
        )


def _hours_on(day: date, office_hours: OfficeHoursConfig) -> tuple[time, time] | None:
    spec: str | None = getattr(office_hours, _WEEKDAYS[day.weekday()])
    if spec is None:
        return None
    opens, closes = spec.split("-")
    return time.fromisoformat(opens), time.fromisoformat(closes)


def _is_holiday(day: date, sla: SlaConfig) -> bool:
    if not sla.public_holidays:
        return False
    return day in _holidays(sla.holiday_country, day.year)


@lru_cache(maxsize=32)
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)
