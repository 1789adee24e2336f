"""The report's charts as PNG bytes (matplotlib, Agg), drawn with the bundled CJK font."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas

from voc.report.data import DimensionShare, FunnelStep, Problem
from voc.report.fonts import matplotlib_family

PRIORITY_COLOURS = {"P1": "#c0392b", "P2": "#e67e22", "P3": "#f1c40f", "P4": "#95a5a6"}
CURRENT, PREVIOUS = "#1f5fa8", "#a9c4e4"


def _png(draw: Callable[[Axes], None], size: tuple[float, float]) -> bytes:
    plt.rcParams["font.family"] = [matplotlib_family()]
    plt.rcParams["axes.unicode_minus"] = False
    figure = Canvas(figsize=size, dpi=110)
    axes = figure.subplots()
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def funnel_chart(steps: list[FunnelStep]) -> bytes:
    def draw(ax: Axes) -> None:
        labels = [s.name for s in steps][::-1]
        rows = range(len(steps))
        ax.barh([r + 0.2 for r in rows], [s.current for s in steps][::-1], height=0.4, color=CURRENT, label="本周")
        ax.barh([r - 0.2 for r in rows], [s.previous for s in steps][::-1], height=0.4, color=PREVIOUS, label="上周")
        ax.set_yticks(list(rows), labels)
        for r, s in zip(rows, steps[::-1], strict=True):
            ax.text(s.current, r + 0.2, f" {s.current}", va="center", fontsize=8)
        ax.set_title("服务漏斗（机器人 → 人工 → 线上反馈 → 队伍反馈 → 投诉 → 监管）")
        ax.legend(loc="lower right")
    return _png(draw, (7.5, 3.6))


def dimension_chart(shares: list[DimensionShare]) -> bytes:
    def draw(ax: Axes) -> None:
        x = range(len(shares))
        ax.bar([i - 0.2 for i in x], [s.current for s in shares], width=0.4, color=CURRENT, label="本周")
        ax.bar([i + 0.2 for i in x], [s.previous for s in shares], width=0.4, color=PREVIOUS, label="上周")
        ax.set_xticks(list(x), [s.name for s in shares])
        ax.set_ylabel("负面声音（条）")
        ax.set_title("人机物法环分布（负面声音）")
        ax.legend()
    return _png(draw, (7.5, 3.2))


def matrix_chart(problems: list[Problem]) -> bytes:
    """Severity × impact: each problem at its cell, coloured by priority, labelled by cluster id."""
    def draw(ax: Axes) -> None:
        for i in range(1, 6):
            ax.axhline(i + 0.5, color="#dddddd", lw=0.8)
            ax.axvline(i + 0.5, color="#dddddd", lw=0.8)
        placed: dict[tuple[int, int], int] = {}
        for p in problems:
            slot = placed.get((p.impact, p.severity), 0)
            placed[(p.impact, p.severity)] = slot + 1
            dx, dy = (slot % 3 - 1) * 0.25, (slot // 3) * 0.22 - 0.2
            ax.scatter(p.impact + dx, p.severity + dy, s=60 + 4 * min(p.current_count, 100),
                       color=PRIORITY_COLOURS[p.priority], alpha=0.8, edgecolors="black", linewidths=0.5)
            ax.annotate(p.cluster_id, (p.impact + dx, p.severity + dy), fontsize=7, ha="center", va="center")
        for priority, colour in PRIORITY_COLOURS.items():
            ax.scatter([], [], color=colour, label=priority)
        ax.set_xlim(0.5, 5.5)
        ax.set_ylim(0.5, 5.5)
        ax.set_xlabel("影响度（声量、增长、漏斗层级、客户数）")
        ax.set_ylabel("严重度（情绪、资金受阻、监管/媒体威胁、弱势客群）")
        ax.set_title("问题优先级矩阵（严重度 × 影响度）")
        ax.legend(loc="lower right", fontsize=8)
    return _png(draw, (7, 5.2))
