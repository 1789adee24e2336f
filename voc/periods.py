"""Reporting periods: ISO weeks and explicit date ranges in local (Asia/Shanghai) time."""

from __future__ import annotations

import re
from datetime import date, timedelta

from pydantic import BaseModel, computed_field, model_validator

_WEEK_RE = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)


class Period(BaseModel):
    """An inclusive range of local calendar days."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"统计期的结束日 {self.end} 早于开始日 {self.start}")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        return Period(start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    @classmethod
    def week_of(cls, day: date) -> Period:
        """The ISO week (Monday to Sunday) that holds this local day."""
        monday = day - timedelta(days=day.weekday())
        return cls(start=monday, end=monday + timedelta(days=6))

    def shifted(self, weeks: int) -> Period:
        """The same days moved by whole weeks (negative: earlier)."""
        step = timedelta(weeks=weeks)
        return Period(start=self.start + step, end=self.end + step)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        year, week, weekday = self.start.isocalendar()
        if weekday == 1 and self.days == 7:
            return f"{year}-W{week:02d}"
        return f"{self.start.isoformat()}~{self.end.isoformat()}"

    def __str__(self) -> str:
        return self.label


def week_label(day: date) -> str:
    """The ISO week label (2026-W47) of a local day."""
    return Period.week_of(day).label


def shift_week(week: str, weeks: int) -> str:
    """An ISO week label moved by whole weeks (negative: earlier)."""
    return parse_week(week).shifted(weeks).label


def is_iso_week(label: str) -> bool:
    try:
        return parse_week(label).label == label
    except ValueError:
        return False


def parse_week(week: str) -> Period:
    match = _WEEK_RE.match(week.strip())
    if not match:
        raise ValueError(f"{week!r} 不是 ISO 周次，应写成 2026-W47")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as exc:
        raise ValueError(f"{week!r} 不是存在的周次（{exc}）") from exc
    return Period(start=monday, end=monday + timedelta(days=6))


def period_of(week: str | None = None, start: date | None = None, end: date | None = None) -> Period:
    """A week, or an explicit from/to range (either end may be open when the other is a week)."""
    if week:
        return parse_week(week)
    if start and end:
        return Period(start=start, end=end)
    raise ValueError("请给出周次（--week 2026-W47）或同时给出开始与结束日期（--from、--to）")
