"""Due times: calendar hours, and office hours skipping weekends and holidays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from mailbot.policy import OfficeHoursConfig, SlaConfig
from mailbot.sla import due_time, time_left

WIB = ZoneInfo("Asia/Jakarta")
WORKING = SlaConfig(mode="working_hours")


def wib(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WIB)


def test_calendar_mode_adds_24_hours_whatever_the_day() -> None:
    received = wib(2026, 8, 14, 15, 0)

    due = due_time(received, 24, SlaConfig(), "Asia/Jakarta")

    assert due == datetime(2026, 8, 15, 8, 0, tzinfo=UTC)


def test_independence_day_2026_is_a_holiday_in_the_library() -> None:
    assert holidays.country_holidays("ID", years=2026).get("2026-08-17") == (
        "Independence Day"
    )


def test_working_hours_skip_the_weekend_and_independence_day() -> None:
    # Friday after closing (14:30); Sat, Sun closed; Mon 17 August is a holiday.
    # Tue and Wed give 8.5 h each, so the last 7 h run Thu 07:30-14:30.
    received = wib(2026, 8, 14, 15, 0)

    due = due_time(received, 24, WORKING, "Asia/Jakarta")

    assert due == wib(2026, 8, 20, 14, 30)
    assert due.tzinfo is UTC


def test_working_hours_use_the_short_friday() -> None:
    # Thu 12:00-16:00 is 4 h, Fri 07:30-14:30 is 7 h, Mon 8.5 h: the last
    # 4.5 h run Tue 07:30-12:00.
    received = wib(2026, 12, 3, 12, 0)

    due = due_time(received, 24, WORKING, "Asia/Jakarta")

    assert due == wib(2026, 12, 8, 12, 0)


def test_mail_before_opening_counts_from_opening() -> None:
    received = wib(2026, 12, 1, 5, 45)

    due = due_time(received, 8, WORKING, "Asia/Jakarta")

    assert due == wib(2026, 12, 1, 15, 30)


def test_holidays_can_be_turned_off() -> None:
    sla = SlaConfig(mode="working_hours", public_holidays=False)
    received = wib(2026, 8, 14, 15, 0)

    due = due_time(received, 8.5, sla, "Asia/Jakarta")

    assert due == wib(2026, 8, 17, 16, 0)


def test_office_hours_are_configurable() -> None:
    hours = OfficeHoursConfig(sat="08:00-12:00")
    sla = SlaConfig(mode="working_hours", office_hours=hours)
    received = wib(2026, 12, 4, 14, 0)

    due = due_time(received, 2, sla, "Asia/Jakarta")

    assert due == wib(2026, 12, 5, 9, 30)


def test_office_hours_that_close_before_opening_are_refused() -> None:
    with pytest.raises(ValueError, match="fri: '14:30-07:30' closes before it opens"):
        OfficeHoursConfig(fri="14:30-07:30")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_time(datetime(2026, 12, 1, 8, 0), 24, SlaConfig(), "Asia/Jakarta")


def test_time_left_counts_office_hours_in_working_hours_mode() -> None:
    # Sunday night before a Tuesday 09:30 due time: Monday 17 August is a
    # holiday, so only Tuesday 07:30-09:30 is left.
    now = wib(2026, 8, 16, 22, 0)
    due = wib(2026, 8, 18, 9, 30)

    assert time_left(now, due, WORKING, "Asia/Jakarta") == timedelta(hours=2)
    assert time_left(now, due, SlaConfig(), "Asia/Jakarta") == timedelta(
        days=1, hours=11, minutes=30
    )
    assert time_left(due, now, WORKING, "Asia/Jakarta") == timedelta(0)
