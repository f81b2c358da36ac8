"""Schedule expressions as EventBridge reads them: the next firing times of `rate(...)` and of
six-field `cron(...)` with `L`, `W` and `#`, checked against a reference calendar computation
(the standard library's `calendar`, day by day) over several years."""

from __future__ import annotations

import calendar
import datetime as dt
import random

import pytest

from lambdastack.schedules import CronSchedule, InvalidSchedule, RateSchedule, parse_schedule

UTC = dt.UTC


def firings(expression: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    schedule = parse_schedule(expression)
    out: list[dt.datetime] = []
    at = start
    for _ in range(count):
        found = schedule.next_after(at, start)
        assert found is not None
        out.append(found)
        at = found
    return out


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def test_rate_fires_every_interval_from_the_minute_the_rule_was_made() -> None:
    made = dt.datetime(2026, 3, 1, 10, 7, 42, tzinfo=UTC)
    assert firings("rate(1 minute)", made, 3) == [dt.datetime(2026, 3, 1, 10, m, tzinfo=UTC) for m in (8, 9, 10)]
    assert firings("rate(2 hours)", made, 2) == [dt.datetime(2026, 3, 1, 12, 7, tzinfo=UTC),
                                                  dt.datetime(2026, 3, 1, 14, 7, tzinfo=UTC)]
    assert isinstance(parse_schedule("rate(3 days)"), RateSchedule)


@pytest.mark.parametrize("expression", [
    "rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1 week)", "cron(0 0 * * * *)",
    "cron(0 0 ? * ? *)", "cron(60 0 * * ? *)", "cron(0 24 * * ? *)", "cron(0 0 32 * ? *)", "cron(0 0 ? * 8 *)",
    "cron(0 0 * 13 ? *)", "cron(0 0 ? * 2#6 *)", "cron(0 0 * * ?)", "cron(0 0 10-5 * ? *)", "every minute",
])
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(InvalidSchedule):
        parse_schedule(expression)


def test_last_friday_of_each_month() -> None:
    start = dt.datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    expected = []
    for month in range(1, 13):
        last = max(week[calendar.FRIDAY] for week in calendar.monthcalendar(2026, month))
        expected.append(dt.datetime(2026, month, last, 10, 0, tzinfo=UTC))
    assert firings("cron(0 10 ? * 6L 2026)", start, 12) == expected
    assert parse_schedule("cron(0 10 ? * 6L 2026)").next_after(expected[-1]) is None  # 2026 only


def test_nth_weekday_of_the_month() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    expected = []
    for year, month in [(2026, m) for m in range(1, 13)] + [(2027, 1)]:
        mondays = [week[calendar.MONDAY] for week in calendar.monthcalendar(year, month) if week[calendar.MONDAY]]
        expected.append(dt.datetime(year, month, mondays[1], 8, 30, tzinfo=UTC))
    assert firings("cron(30 8 ? * MON#2 *)", start, 13) == expected
    # The fifth Friday exists in some months only.
    fifth = firings("cron(0 0 ? * 6#5 *)", start, 4)
    for day in fifth:
        assert day.weekday() == calendar.FRIDAY and day.day > 28


def test_last_day_of_the_month_across_leap_years() -> None:
    start = dt.datetime(2027, 12, 31, 12, 30, tzinfo=UTC)  # just after the last firing of 2027
    got = firings("cron(15 12 L * ? *)", start, 14)
    expected = []
    for year, month in [(2028, m) for m in range(1, 13)] + [(2029, 1), (2029, 2)]:
        expected.append(dt.datetime(year, month, calendar.monthrange(year, month)[1], 12, 15, tzinfo=UTC))
    assert got == expected
    assert expected[1].day == 29 and expected[-1].day == 28


def test_nearest_weekday_stays_in_its_month() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    for day in firings("cron(0 9 1W * ? *)", start, 24):
        first = day.replace(day=1)
        if first.weekday() == 5:  # the 1st is a Saturday: Monday the 3rd, not Friday of the month before
            assert day.day == 3
        elif first.weekday() == 6:  # Sunday: Monday the 2nd
            assert day.day == 2
        else:
            assert day.day == 1
    for day in firings("cron(0 9 15W * ? *)", start, 24):
        assert day.weekday() < 5 and abs(day.day - 15) <= 1


def test_next_after_agrees_with_a_minute_by_minute_scan() -> None:
    """For random expressions and start times, the first firing equals the first matching minute."""
    rng = random.Random(7)
    fields = [
        ("*/15", "0-5,12", "*", "*", "?", "*"), ("0", "*/6", "?", "*", "MON-FRI", "*"),
        ("5,35", "9", "1,15", "JAN,JUL", "?", "*"), ("0", "18", "L", "*", "?", "*"),
        ("0", "0", "?", "*", "SUN", "2026-2030"),
        ("45", "23", "10W", "*/2", "?", "*"), ("0", "12", "?", "FEB", "2#1", "*"),
    ]
    for minute, hour, dom, month, dow, year in fields:
        schedule = parse_schedule(f"cron({minute} {hour} {dom} {month} {dow} {year})")
        assert isinstance(schedule, CronSchedule)
        for _ in range(5):
            start = dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(0, 2 * 366 * 24 * 60))
            expected = start.replace(second=0) + dt.timedelta(minutes=1)
            while not schedule.matches(expected):
                expected += dt.timedelta(minutes=1)
            assert schedule.next_after(start) == expected
