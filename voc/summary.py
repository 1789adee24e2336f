"""The interim main-job output: a week's headline figures against the week before."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from voc.config import Settings
from voc.models import FUNNEL_LABELS, FunnelTier
from voc.periods import Period, parse_week
from voc.storage import Store, VoiceRow
from voc.voice_queries import Comparison, GroupBy, compare_periods


def latest_week(store: Store) -> Period | None:
    with store.session() as session:
        last = session.scalar(select(func.max(VoiceRow.local_date)))
    return Period.week_of(last) if last else None


def week_comparisons(store: Store, period: Period) -> dict[GroupBy, Comparison]:
    return {group: compare_periods(store, group, period)
            for group in (GroupBy.FUNNEL_TIER, GroupBy.CHANNEL, GroupBy.BUSINESS, GroupBy.SEGMENT)}


def print_summary(settings: Settings, week: str | None, console: Console) -> None:
    store = Store(settings.resolved_database_url)
    period = parse_week(week) if week else latest_week(store)
    if period is None:
        console.print("no voices stored yet: run `voc ingest` or `voc quickstart` first")
        return
    comparisons = week_comparisons(store, period)
    first = comparisons[GroupBy.FUNNEL_TIER]
    console.print(f"[bold]客户声音周报摘要 {period.label}[/bold]（{period.start} ~ {period.end}）："
                  f"本周 {first.current_total} 条，上周 {first.previous_total} 条（不含关联重复）")
    for group, comparison in comparisons.items():
        table = Table(title=f"按{_GROUP_TITLES[group]}", show_lines=False)
        for column in ("", "本周", "上周", "变化", "增长率", "显著上升"):
            table.add_column(column)
        rows = comparison.rows
        if group is GroupBy.FUNNEL_TIER:
            rows = sorted(rows, key=lambda r: int(r.key))
        for row in rows:
            label = FUNNEL_LABELS[FunnelTier(int(row.key))] if group is GroupBy.FUNNEL_TIER else row.key
            growth = "—" if row.growth is None else f"{row.growth:+.1%}"
            table.add_row(label, str(row.current), str(row.previous), f"{row.change:+d}", growth,
                          "是" if row.significant and row.change > 0 else "")
        console.print(table)


_GROUP_TITLES = {GroupBy.FUNNEL_TIER: "服务漏斗层级", GroupBy.CHANNEL: "渠道", GroupBy.BUSINESS: "业务",
                 GroupBy.SEGMENT: "客群"}
