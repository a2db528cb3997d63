"""The over-time range: period, from and to, validated; and UTC days rolled up into buckets.

Buckets are labelled by their first day: a day is "YYYY-MM-DD", a week is the date of its ISO week's Monday
("YYYY-MM-DD"), a month is "YYYY-MM". `from` and `to` are whole UTC days, both included; the first and last
week or month bucket may therefore be partial (only the days inside the range count).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from ..clock import iso, utcnow
from ..errors import InvalidInput

PERIODS = ("day", "week", "month")
DEFAULT_BUCKETS = {"day": 30, "week": 12, "month": 12}  # the default range ends today (UTC)
MAX_DAYS = 3 * 365 + 1  # a range may cover at most three years
EARLIEST = date(1970, 1, 1)
LATEST = date(9998, 12, 31)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first of the month `months` after (or before) `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def bucket_start(day: date, period: str) -> date:
    if period == "week":
        return week_start(day)
    if period == "month":
        return month_start(day)
    return day


def label(start: date, period: str) -> str:
    return start.strftime("%Y-%m") if period == "month" else start.isoformat()


def next_bucket(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return add_months(start, 1)
    return start + timedelta(days=1)


def _utc_midnight(day: date) -> str:
    return iso(datetime.combine(day, time(0), timezone.utc))


@dataclass(frozen=True)
class Range:
    period: str
    start: date  # first day included
    end: date    # last day included

    @property
    def bounds(self) -> tuple[str, str]:
        """[start, end) as stored timestamps: the range's first midnight and the midnight after its last day."""
        return _utc_midnight(self.start), _utc_midnight(self.end + timedelta(days=1))

    def buckets(self) -> list[str]:
        labels = []
        current = bucket_start(self.start, self.period)
        while current <= self.end:
            labels.append(label(current, self.period))
            current = next_bucket(current, self.period)
        return labels

    def bucket_of(self, day: str) -> str:
        return label(bucket_start(date.fromisoformat(day), self.period), self.period)

    def args(self) -> dict[str, str]:
        return {"period": self.period, "from": self.start.isoformat(), "to": self.end.isoformat()}


def default_start(end: date, period: str) -> date:
    count = DEFAULT_BUCKETS[period]
    if period == "week":
        return week_start(end) - timedelta(weeks=count - 1)
    if period == "month":
        return add_months(end, -(count - 1))
    return end - timedelta(days=count - 1)


def _parse_day(name: str, raw: str | None) -> date | None:
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: expected a date as YYYY-MM-DD, e.g. 2026-01-31", field=name) from None
    if not EARLIEST <= day <= LATEST:
        raise InvalidInput(f"{name}: must be between {EARLIEST} and {LATEST}", field=name)
    return day


def parse_range(period: str | None, start: str | None, end: str | None, today: date | None = None) -> Range:
    """Validate the query's period/from/to (empty means default) and fill in the defaults: the range ends
    today (UTC) and covers the last 30 days, 12 weeks or 12 months."""
    period = (period or "").strip() or "day"
    if period not in PERIODS:
        raise InvalidInput(f"period: must be one of {', '.join(PERIODS)}", field="period")
    first, last = _parse_day("from", start), _parse_day("to", end)
    if last is None:
        last = today or utcnow().date()
    if first is None:
        first = default_start(last, period)
    if first > last:
        raise InvalidInput(f"from: must be on or before to ({last.isoformat()})", field="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"from: the range can cover at most 3 years ({MAX_DAYS} days)", field="from")
    return Range(period, first, last)
