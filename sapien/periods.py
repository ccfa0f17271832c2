"""Calendar periods in UTC, shared by quests and boards: one key format and one window per period.

Keys: ``day`` "2026-11-22", ``week`` the ISO week "2026-W47" (ISO year: 2027-01-01 is "2026-W53"),
``month`` "2026-11", ``season`` (a calendar quarter) "2026-Q4"; ``all`` (and a quest's ``once``) is its
own key. Quests name their periods ``daily``/``weekly``/``once``; those are the same periods.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sapien.database import as_utc

ALIASES = {"daily": "day", "weekly": "week"}


def period_key(period: str, now: datetime) -> str:
    """The key of the period containing `now` (see the module docstring)."""
    period = ALIASES.get(period, period)
    moment = as_utc(now)
    if period == "day":
        return moment.date().isoformat()
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{moment.year}-{moment.month:02d}"
    if period == "season":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    if period in ("all", "once"):
        return period
    raise ValueError(f"unknown period {period!r}")


def period_window(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the period containing `now`, in UTC; (None, None) for all time."""
    period = ALIASES.get(period, period)
    now = as_utc(now)
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    if period in ("all", "once"):
        return None, None
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=now.isoweekday() - 1)
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    if period == "season":
        start = day.replace(month=3 * ((now.month - 1) // 3) + 1, day=1)
        end_month = start.month + 3
        return start, start.replace(year=start.year + (end_month > 12), month=(end_month - 1) % 12 + 1)
    raise ValueError(f"unknown period {period!r}")


def window_of_key(period: str, key: str) -> tuple[datetime | None, datetime | None]:
    """The window of a period key made by `period_key` (for rebuilding a frozen board)."""
    period = ALIASES.get(period, period)
    if period == "day":
        start = datetime.fromisoformat(key).replace(tzinfo=UTC)
    elif period == "week":
        year, week = key.split("-W")
        start = datetime.fromisocalendar(int(year), int(week), 1).replace(tzinfo=UTC)
    elif period == "month":
        year, month = key.split("-")
        start = datetime(int(year), int(month), 1, tzinfo=UTC)
    elif period == "season":
        year, quarter = key.split("-Q")
        start = datetime(int(year), 3 * (int(quarter) - 1) + 1, 1, tzinfo=UTC)
    else:
        return None, None
    return period_window(period, start)
