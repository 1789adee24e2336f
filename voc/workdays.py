"""Working-day arithmetic for SLA due dates: China's statutory holidays and 调休 working weekends.

The base calendar is the maintained `chinese-calendar` package (the State Council's notices, one
release per year). A bank's own YAML (`VOC_HOLIDAYS`, default `knowledge/holidays.yaml`) overrides it
day by day: extra closing days (`holidays`) and extra working days (`workdays`). For a year the
package does not cover yet (the notice comes out late in the year before), only weekends and the
YAML count, and `uncovered_years` says so, so the run can warn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import chinese_calendar
import yaml

log = logging.getLogger(__name__)


@cache
def _official_year(year: int) -> bool:
    return _official_workday(date(year, 1, 1)) is not None


_WARNED: set[int] = set()  # years already warned about: a run adds dozens of due dates


def _official_workday(day: date) -> bool | None:
    """The State Council calendar's answer, or None for a year it does not cover."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)  # the bank's extra closing days
    workdays: frozenset[date] = field(default_factory=frozenset)  # the bank's extra working days
    official: bool = True  # use the State Council calendar beneath the bank's own days

    @classmethod
    def load(cls, path: Path, official: bool = True) -> WorkCalendar:
        if not path.is_file():
            return cls(official=official)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(frozenset(data.get("holidays") or []), frozenset(data.get("workdays") or []), official)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        official = _official_workday(day) if self.official else None
        return day.weekday() < 5 if official is None else official

    def uncovered_years(self, start: date, end: date) -> list[int]:
        """Years in [start, end] whose holidays are known neither to the package nor to the YAML."""
        own = {d.year for d in self.holidays | self.workdays}
        years = range(start.year, end.year + 1)
        return [y for y in years if y not in own and not (self.official and _official_year(y))]

    def add_working_days(self, start: date, days: int) -> date:
        """The date `days` working days after `start` (start itself does not count)."""
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        missing = [y for y in self.uncovered_years(start, current) if y not in _WARNED]
        if missing:
            _WARNED.update(missing)
            log.warning("%s 年的法定节假日尚未收录：到期日只跳过周末。请在 holidays.yaml 中补充当年安排",
                        "、".join(map(str, missing)))
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after start up to and including end (negative when end is earlier)."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(self.is_working_day(start + timedelta(days=n)) for n in range(1, (end - start).days + 1))
