"""How serious and how wide a problem is (KD-001, KD-002), and whether it is really rising.

Rising is an exact test, not a z-score, with the week's problems tested together (Benjamini–Hochberg):
given the two periods' counts, the current share is
binomial with p = 1/2 when the weekly rate did not change (the conditional test for two Poisson
rates). A problem with fewer than MIN_RISING voices is never "significantly rising", and without a
previous period there is nothing to rise from (首周无对比).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voc.contracts import Priority, Signal

SIGNIFICANCE = 0.05
MIN_RISING = 5
VULNERABLE_SEGMENTS = ("老年客户",)
# Calibrated on gold_v1's issues table (the labellers' P1–P4 on the KD-001 matrix): the shares of a
# problem's voices that raise severity, the volume-share bands of impact, and the escalated share
# that raises impact. Measured there: priority exact 43% → 57%, within one 86% → 96%; see docs/dev_notes.md.
THREAT_SHARE, BLOCKED_SHARE, VULNERABLE_SHARE = 0.2, 0.2, 0.4
IMPACT_BANDS = (0.15, 0.075, 0.03, 0.015)  # share of the period's negative voices for impact 5, 4, 3, 2
ESCALATED_SHARE = 0.4


@dataclass(frozen=True)
class Facts:
    """What severity and impact are read from, per problem."""

    intensities: Sequence[int]
    signals: Sequence[Sequence[Signal]]
    segments: Sequence[str]
    size: int
    complaints: int
    regulator: int


def rising_test(current: int, previous: int, has_previous: bool) -> tuple[bool, float]:
    """(significantly rising on its own, one-sided p-value)."""
    if not has_previous or current < MIN_RISING or current <= previous:
        return False, 1.0
    from scipy.stats import binomtest  # here: scipy.stats takes a second to import

    p_value = float(binomtest(current, current + previous, 0.5, alternative="greater").pvalue)
    return p_value < SIGNIFICANCE, p_value


def rising_flags(p_values: Sequence[float]) -> list[bool]:
    """Which of a week's problems rose significantly, with the false discovery rate held at
    SIGNIFICANCE across all of them (Benjamini–Hochberg): thirty problems tested at 5% each would
    otherwise flag one or two that merely fluctuated."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    cutoff = -1
    for rank, index in enumerate(order, start=1):
        if p_values[index] <= SIGNIFICANCE * rank / len(p_values):
            cutoff = rank
    chosen = set(order[:cutoff]) if cutoff > 0 else set()
    return [i in chosen for i in range(len(p_values))]


def severity_of(facts: Facts) -> int:
    """Emotion intensity, blocked goals, regulator/media threats and vulnerable segments (KD-002)."""
    n = max(len(facts.intensities), 1)
    level = float(np.mean(facts.intensities)) if facts.intensities else 1.0
    if sum(Signal.THREAT in s for s in facts.signals) / n >= THREAT_SHARE:
        level += 1
    if sum(Signal.BLOCKED in s for s in facts.signals) / n >= BLOCKED_SHARE:
        level += 1
    if sum(s in VULNERABLE_SEGMENTS for s in facts.segments) / n >= VULNERABLE_SHARE:
        level += 1  # KD-002: vulnerable customers raise severity by at least one
    return int(max(1, min(5, round(level))))


def impact_of(facts: Facts, negatives: int, rising: bool) -> int:
    """Volume share of the period's negative voices, growth, and how far up the funnel it reached."""
    share = facts.size / max(negatives, 1)
    level = 5 - sum(share < band for band in IMPACT_BANDS)
    escalated = facts.complaints / max(facts.size, 1) >= ESCALATED_SHARE
    return min(5, level + int(rising) + int(escalated))


def _band(score: int) -> int:
    """4–5 high (2), 3 middle (1), 1–2 low (0), as in KD-001 / KD-002."""
    return 2 if score >= 4 else 1 if score == 3 else 0


def priority_of(severity: int, impact: int) -> Priority:
    """The severity × impact matrix of KD-001: high×high P1; high×mid or mid×high P2; high×low,
    mid×mid or low×high P3; everything lower P4."""
    return Priority.from_rank(5 - (_band(severity) + _band(impact)))
