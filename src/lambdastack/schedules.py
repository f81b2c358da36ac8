"""Schedule expressions, as EventBridge reads them: `rate(5 minutes)` and `cron(...)` with six fields.

`cron(Minutes Hours Day-of-month Month Day-of-week Year)`, in UTC:
- Minutes 0-59, Hours 0-23, Month 1-12 or JAN-DEC, Year 1970-2199: `,` `-` `*` `/`;
- Day-of-month 1-31: also `?`, `L` (the last day) and `nW` (the weekday nearest day n, within
  the month);
- Day-of-week 1-7 (1 is Sunday) or SUN-SAT: also `?`, `L` (Saturday), `nL` (the last weekday
  n of the month) and `n#k` (the k-th weekday n of the month);
- one of Day-of-month and Day-of-week is `?`, and only one.
A `rate` fires every interval from its anchor (the minute its rule was made). Both answer
`next_after(t)`: the first firing time strictly after `t`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(([^)]*)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
SEARCH_DAYS = 366 * 8  # how far ahead a cron may next fire (leap days on Feb 29 included)


class InvalidSchedule(ValueError):
    """Not a schedule expression EventBridge accepts."""


def parse_schedule(text: str) -> RateSchedule | CronSchedule:
    rate = _RATE.fullmatch(text)
    if rate is not None:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise InvalidSchedule("Parameter ScheduleExpression is not valid.")
        return RateSchedule(value * _UNIT_S[unit.rstrip("s")])
    cron = _CRON.fullmatch(text)
    if cron is not None:
        return CronSchedule.parse(cron.group(1))
    raise InvalidSchedule("Parameter ScheduleExpression is not valid.")


def aws_weekday(day: dt.date) -> int:
    """1 for Sunday ... 7 for Saturday."""
    return (day.weekday() + 1) % 7 + 1


@dataclass(frozen=True)
class RateSchedule:
    interval_s: int

    def next_after(self, t: dt.datetime, anchor: dt.datetime) -> dt.datetime:
        start = anchor.replace(second=0, microsecond=0)
        if t < start:
            return start
        steps = int((t - start).total_seconds() // self.interval_s) + 1
        return start + dt.timedelta(seconds=steps * self.interval_s)


def _numbers(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """`,` `-` `*` `/` over low..high (names allowed); raises InvalidSchedule."""
    found: set[int] = set()

    def number(text: str) -> int:
        value = names.get(text.upper()) if names else None
        if value is None:
            if not text.isdigit():
                raise InvalidSchedule(f"Parameter ScheduleExpression is not valid: {text!r}")
            value = int(text)
        if not low <= value <= high:
            raise InvalidSchedule(f"Parameter ScheduleExpression is not valid: {value} is out of range")
        return value

    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = number(step_text) if slash and step_text.isdigit() and int(step_text) > 0 else 1
        if slash and (not step_text.isdigit() or int(step_text) == 0):
            raise InvalidSchedule("Parameter ScheduleExpression is not valid: bad step")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = number(a), number(b)
        else:
            first = number(base)
            last = high if slash else first
        if first > last:
            raise InvalidSchedule("Parameter ScheduleExpression is not valid: a range runs backwards")
        found.update(range(first, last + 1, step))
    return found


def _day_of_month(field: str) -> Callable[[dt.date], bool]:
    if field == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    weekday = re.fullmatch(r"(\d{1,2})W", field)
    if weekday is not None:
        target = int(weekday.group(1))
        if not 1 <= target <= 31:
            raise InvalidSchedule("Parameter ScheduleExpression is not valid: W takes a day 1-31")
        return lambda day: day == _nearest_weekday(day.year, day.month, target)
    days = _numbers(field, 1, 31)
    return lambda day: day.day in days


def _nearest_weekday(year: int, month: int, target: int) -> dt.date | None:
    last = calendar.monthrange(year, month)[1]
    if target > last:
        return None
    day = dt.date(year, month, target)
    if day.weekday() == 5:  # Saturday: Friday before, unless that leaves the month
        return day - dt.timedelta(days=1) if target > 1 else day + dt.timedelta(days=2)
    if day.weekday() == 6:  # Sunday: Monday after, unless that leaves the month
        return day + dt.timedelta(days=1) if target < last else day - dt.timedelta(days=2)
    return day


def _day_of_week(field: str) -> Callable[[dt.date], bool]:
    if field == "L":
        return lambda day: aws_weekday(day) == 7
    last = re.fullmatch(r"([1-7]|[A-Za-z]{3})L", field)
    if last is not None:
        wanted = _numbers(last.group(1), 1, 7, DAYS).pop()
        return lambda day: aws_weekday(day) == wanted and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    nth = re.fullmatch(r"([1-7]|[A-Za-z]{3})#([1-5])", field)
    if nth is not None:
        wanted, k = _numbers(nth.group(1), 1, 7, DAYS).pop(), int(nth.group(2))
        return lambda day: aws_weekday(day) == wanted and (day.day - 1) // 7 + 1 == k
    days = _numbers(field, 1, 7, DAYS)
    return lambda day: aws_weekday(day) in days


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: Callable[[dt.date], bool]

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        fields = text.split()
        if len(fields) != 6:
            raise InvalidSchedule("Parameter ScheduleExpression is not valid: cron takes six fields")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise InvalidSchedule("Parameter ScheduleExpression is not valid: one of day-of-month and "
                                  "day-of-week must be '?'")
        day_matches = _day_of_week(dow) if dom == "?" else _day_of_month(dom)
        return cls(frozenset(_numbers(minute, 0, 59)), frozenset(_numbers(hour, 0, 23)),
                   frozenset(_numbers(month, 1, 12, MONTHS)), frozenset(_numbers(year, 1970, 2199)), day_matches)

    def matches(self, t: dt.datetime) -> bool:
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and t.year in self.years and self.day_matches(t.date()))

    def next_after(self, t: dt.datetime, anchor: dt.datetime | None = None) -> dt.datetime | None:
        """The first firing time after `t` (UTC), or None if there is none within SEARCH_DAYS."""
        start = t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            if day.year > max(self.years):
                return None
            if day.year in self.years and day.month in self.months and self.day_matches(day):
                earliest = (start.hour, start.minute) if day == start.date() else (0, 0)
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        if (hour, minute) >= earliest:
                            return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
            day += dt.timedelta(days=1)
        return None
