"""The report's charts as PNG bytes (matplotlib, Agg), drawn with the bundled CJK font."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas
from matplotlib.patches import Rectangle

from voc.contracts import Priority, Signal
from voc.report.data import DimensionShare, FunnelStep, Problem
from voc.report.fonts import matplotlib_family

PRIORITY_COLOURS = {Priority.P1: "#c0392b", Priority.P2: "#e67e22", Priority.P3: "#f1c40f", Priority.P4: "#95a5a6"}
CURRENT, PREVIOUS = "#1f5fa8", "#a9c4e4"
NAMED = (Priority.P1, Priority.P2)  # the matrix chart names these problems; the others are counted
# The report prints its charts 184 mm (7.24 in) wide, the A4 text width: a chart drawn 7.2 in wide keeps
# its font sizes on paper (a 7.5 pt label prints at 7.5 pt), and 200 dpi keeps it sharp in print.
WIDTH = 7.2
DPI = 200


def _png(draw: Callable[[Axes], None], size: tuple[float, float]) -> bytes:
    plt.rcParams["font.family"] = [matplotlib_family()]
    plt.rcParams["axes.unicode_minus"] = False
    figure = Canvas(figsize=size, dpi=DPI)
    axes = figure.subplots()
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def funnel_chart(steps: list[FunnelStep]) -> bytes:
    """This week's volume per tier beside last week's; only this week's when last week had none (首周无对比)."""
    compare = any(s.previous for s in steps)

    def draw(ax: Axes) -> None:
        rows = range(len(steps))
        shift, height = (0.2, 0.4) if compare else (0.0, 0.6)
        ax.barh([r + shift for r in rows], [s.current for s in steps][::-1], height=height, color=CURRENT,
                label="本周")
        if compare:
            ax.barh([r - shift for r in rows], [s.previous for s in steps][::-1], height=height, color=PREVIOUS,
                    label="上周")
        ax.set_yticks(list(rows), [f"{s.tier}. {s.name}" for s in steps][::-1], fontsize=9)
        for r, s in zip(rows, steps[::-1], strict=True):
            ax.text(s.current, r + shift, f" {s.current}", va="center", fontsize=8)
        ax.margins(x=0.08)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_title("服务漏斗（各层级声音，条）" + ("" if compare else "：首周无对比"), fontsize=10)
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(draw, (WIDTH, 2.9))


def dimension_chart(shares: list[DimensionShare]) -> bytes:
    compare = any(s.previous for s in shares)

    def draw(ax: Axes) -> None:
        x = range(len(shares))
        shift, width = (0.2, 0.4) if compare else (0.0, 0.55)
        ax.bar([i - shift for i in x], [s.current for s in shares], width=width, color=CURRENT, label="本周")
        if compare:
            ax.bar([i + shift for i in x], [s.previous for s in shares], width=width, color=PREVIOUS, label="上周")
        ax.set_xticks(list(x), [s.name for s in shares], fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_ylabel("负面声音（条）", fontsize=9)
        ax.set_title("人机物法环分布（负面声音）" + ("" if compare else "：首周无对比"), fontsize=10)
        ax.legend(fontsize=8, frameon=False)
    return _png(draw, (WIDTH, 2.3))


def matrix_chart(problems: list[Problem]) -> bytes:
    """Severity × impact as a 5 × 5 grid: each cell shaded by the priority of its problems and showing
    how many there are; only the P1–P2 problems are named (up to six per cell, then "等 N 个"). With
    fifty problems or more, dots and labels per problem overlap; counts per cell stay readable."""
    cells: dict[tuple[int, int], list[Problem]] = {}
    for p in problems:
        cells.setdefault((p.impact, p.severity), []).append(p)

    def draw(ax: Axes) -> None:
        for (impact, severity), members in cells.items():
            top = min((p.priority for p in members), key=lambda priority: priority.rank)
            ax.add_patch(Rectangle((impact - 0.5, severity - 0.5), 1, 1, color=PRIORITY_COLOURS[top],
                                   alpha=0.35 if top in NAMED else 0.2, linewidth=0))
            named = [p.cluster_id for p in sorted((p for p in members if p.priority in NAMED),
                                                  key=lambda p: (p.priority.rank, -p.current_count))]
            ax.text(impact, severity + (0.2 if named else 0), f"{len(members)} 个", ha="center", va="center",
                    fontsize=13, color="#222222")
            if named:  # three ids a line, two lines at most
                lines = [" ".join(named[i:i + 3]) for i in range(0, min(len(named), 6), 3)]
                if len(named) > 6:
                    lines[-1] += f" 等{len(named)}个"
                ax.text(impact, severity - 0.08, "\n".join(lines), ha="center", va="top", fontsize=7.5,
                        color="#333333", linespacing=1.2)
        for i in range(0, 6):
            ax.axhline(i + 0.5, color="#bbbbbb", lw=0.8)
            ax.axvline(i + 0.5, color="#bbbbbb", lw=0.8)
        for priority, colour in PRIORITY_COLOURS.items():
            ax.add_patch(Rectangle((0, 0), 0, 0, color=colour, alpha=0.6, label=priority))
        ax.set_xlim(0.5, 5.5)
        ax.set_ylim(0.5, 5.5)
        ax.set_xticks(range(1, 6))
        ax.set_yticks(range(1, 6))
        ax.tick_params(length=0)
        ax.set_xlabel("影响度（声量、增长、漏斗层级、客户数）", fontsize=9)
        ax.set_ylabel(f"严重度（情绪、资金受阻、{Signal.THREAT}、弱势客群）", fontsize=9)
        ax.set_title(f"问题优先级矩阵（严重度 × 影响度）：共 {len(problems)} 个问题，标出 P1–P2 编号", fontsize=10)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _png(draw, (WIDTH, 4.9))
