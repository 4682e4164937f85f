"""Freeze windows: weekly or dated spans, each in its own timezone, during which protected moves are refused."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .schema import WEEKDAYS


def zone(name: str) -> ZoneInfo | None:
    """Return the IANA timezone `name`, or None when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(value: str) -> tuple[int, int]:
    hours, minutes = value.split(":")
    return int(hours), int(minutes)


def _minutes(value: str) -> int:
    hours, minutes = _clock(value)
    return hours * 60 + minutes


def dated_bounds(window: dict[str, Any]) -> tuple[datetime, datetime]:
    """Return the aware [start, end) of a dated window: a bare `until` date includes that whole day."""
    tz = zone(window["timezone"]) or ZoneInfo("UTC")

    def moment(value: str, end: bool) -> datetime:
        if "T" in value:
            return datetime.fromisoformat(value).replace(tzinfo=tz)
        day = date.fromisoformat(value) + (timedelta(days=1) if end else timedelta())
        return datetime.combine(day, time(), tzinfo=tz)

    return moment(window["from"], False), moment(window["until"], True)


def covers(window: dict[str, Any], now: datetime) -> bool:
    """True when the (normalised) window is in force at the aware moment `now`."""
    if "days" not in window:
        start, end = dated_bounds(window)
        return start <= now < end
    local = now.astimezone(zone(window["timezone"]) or ZoneInfo("UTC"))
    minute = local.hour * 60 + local.minute
    return (WEEKDAYS[local.weekday()] in window["days"]
            and _minutes(window["start"]) <= minute < _minutes(window["end"]))


def describe(window: dict[str, Any]) -> str:
    """Say a window in words: "Weekend (sat, sun 00:00-24:00 Europe/Paris)"."""
    name = window.get("name") or "Freeze window"
    if "days" in window:
        span = f"{', '.join(window['days'])} {window['start']}–{window['end']}"
    else:
        span = f"{window['from']} – {window['until']}"
    return f"{name} ({span} {window['timezone']})"


def active_window(windows: list[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """Return the first window in force at `now`, or None."""
    return next((w for w in windows if covers(w, now)), None)


def always_frozen(windows: list[dict[str, Any]], start: datetime) -> bool:
    """True when the weekly windows together leave no free minute in a week (plus a day, for DST shifts) from
    `start`: such a policy would refuse every move forever. Dated windows end, so they never lock forever."""
    weekly = [w for w in windows if "days" in w]
    if not weekly:
        return False
    moment = start.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        if not any(covers(w, moment) for w in weekly):
            return False
        moment += timedelta(minutes=1)
    return True
