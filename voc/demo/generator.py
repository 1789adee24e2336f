"""The stream: week by week, which channels, topics, customers, texts and times, and the answers to them.

Every random choice comes from one `random.Random(seed)`, in a fixed order, so the same arguments
always give the same voices. Changing the order of the draws below changes every voice after it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from voc.demo.answers import Answer
from voc.demo.channels import (
    CHANNEL_METADATA,
    CHANNEL_SHARES,
    KIND_PICK,
    MISSING_BUSINESS,
    PLANS,
    REPEAT_TARGETS,
    STYLE_PICK,
    TIME_PROFILE,
)
from voc.demo.data import Weighted
from voc.demo.mix import CONSULT_PICK, CUSTOMER_PII_CHANCE, MIX, PRAISE_PICK, SEGMENT_MIX, SPIKES, rows_per_week
from voc.demo.people import PiiKind, mobile, with_pii
from voc.demo.styles import ASR, COLLOQUIAL, ELDERLY, SHORT, asr, compose_text, reworded
from voc.demo.topics import ALL_TOPICS, CONSULT, ONEOFF, ONEOFFS, PRAISE, RECURRING, SCENARIOS, Topic
from voc.models import Business, Channel, Segment, SourceType
from voc.periods import Period

ID_PREFIX = "DEMO"
# Plain strings for the rows: reading .value off an enum member is slow in a 100k-row loop.
VALUE: dict[Any, str] = {m: m.value for enum in (Channel, Segment, SourceType, Business) for m in enum}


@dataclass(eq=False)
class Draft:
    """A voice being built, and what the generator knows about it (which never enters the row)."""

    row: dict[str, Any]
    topic: Topic
    style: str
    pii: PiiKind | None
    repeat_of: Draft | None = None
    duplicate_of: Draft | None = None

    def answer(self) -> Answer:
        return Answer(
            id=self.row["id"],
            scenario=self.topic.key,
            kind=self.topic.kind,
            style=self.style,
            pii=self.pii,
            repeat_of=self.repeat_of.row["id"] if self.repeat_of else None,
            duplicate_of=self.duplicate_of.row["id"] if self.duplicate_of else None,
        )

    def can_repeat(self) -> bool:
        """Customers come back about problems they described, not about a two-word robot query or a thank-you."""
        return (
            bool(self.row["customer_id"])
            and self.topic.kind in (RECURRING, ONEOFF)
            and self.style != SHORT
            and Channel(self.row["channel"]) in REPEAT_TARGETS
        )

    def exact_copy(self) -> Draft:
        row = dict(self.row, metadata=dict(self.row["metadata"]))
        return Draft(row, self.topic, self.style, self.pii, duplicate_of=self)


def stream(weeks: int, per_week: int, seed: int, last_week: Period) -> Iterator[Draft]:
    rng = random.Random(seed)
    customers = _Customers(rng, weeks * per_week)
    for index in range(weeks):
        week = last_week.shifted(index - (weeks - 1))
        yield from _Week(rng, customers, week, index, index == weeks - 1, per_week).drafts()


class _Customers:
    """Customer-number pools per segment, so some customers come back and segments stay consistent."""

    def __init__(self, rng: random.Random, total_rows: int):
        self.pools = {
            s: [self._new_id(rng, s) for _ in range(max(20, int(total_rows * f)))]
            for s, f in MIX.customer_pools.items()
        }

    @staticmethod
    def _new_id(rng: random.Random, segment: Segment) -> str:
        if segment is not Segment.CORPORATE and rng.random() < 0.55:
            return mobile(rng)
        return f"C{rng.randrange(10**8):08d}"

    def pick(self, rng: random.Random, segment: Segment) -> str:
        return rng.choice(self.pools[segment])


def _largest_remainder(shares: Mapping[Channel, float], total: int) -> dict[Channel, int]:
    """Integer counts proportional to `shares`, summing to `total`, at least one per channel."""
    scale = sum(shares.values())
    exact = {c: max(1.0, total * s / scale) for c, s in shares.items()}
    counts = {c: int(v) for c, v in exact.items()}
    by_remainder = sorted(exact, key=lambda c: exact[c] - counts[c], reverse=True)
    surplus = total - sum(counts.values())
    for channel in by_remainder[: max(surplus, 0)]:
        counts[channel] += 1
    for _ in range(-surplus):
        counts[max(counts, key=lambda c: counts[c])] -= 1
    return counts


class _Week:
    """Builds the voices of one ISO week."""

    def __init__(
        self, rng: random.Random, customers: _Customers, week: Period, index: int, is_last: bool, per_week: int
    ):
        self.rng, self.customers, self.index = rng, customers, index
        self.start = datetime.combine(week.start, datetime.min.time())
        self.label = week.label.replace("-", "")
        split = rows_per_week(per_week)
        self.exact_count, self.repeat_count = split["exact_duplicates"], split["repeats"]
        jitter = MIX.channel_jitter
        shares = {c: s * rng.uniform(1 - jitter, 1 + jitter) for c, s in CHANNEL_SHARES.items()}
        self.channel_counts = _largest_remainder(shares, split["fresh"])
        self.scenario_pick = {c: self._scenario_weights(c) for c in CHANNEL_SHARES}
        self.spike_chance: float = 0.0
        self.spike_pick: Weighted[Topic] | None = None
        if is_last:
            self.spike_chance, self.spike_pick = self._spike_plan()

    def _scenario_weight(self, topic: Topic, channel: Channel) -> float:
        return topic.weight_in_week(self.index) * topic.affinity.get(channel, 1.0)

    def _scenario_weights(self, channel: Channel) -> Weighted[Topic]:
        return Weighted((t, self._scenario_weight(t, channel)) for t in SCENARIOS)

    def _spike_plan(self) -> tuple[float, Weighted[Topic]]:
        # Spike volume is taken from the non-recurring rows, so other scenarios keep their weekly level.
        recurring = {key: 0.0 for key in SPIKES}
        non_recurring = 0.0
        for channel, count in self.channel_counts.items():
            share = PLANS[channel].kinds[RECURRING]
            total = self.scenario_pick[channel].total
            for key in SPIKES:
                recurring[key] += count * share * self._scenario_weight(ALL_TOPICS[key], channel) / total
            non_recurring += count * (1 - share)
        extra = {key: (factor - 1) * recurring[key] / non_recurring for key, factor in SPIKES.items()}
        return min(sum(extra.values()), 0.9), Weighted((ALL_TOPICS[k], v) for k, v in extra.items())

    def drafts(self) -> list[Draft]:
        """The week's voices in time order, numbered: fresh ones, repeat contacts and exact duplicates."""
        channels = [c for c, n in self.channel_counts.items() for _ in range(n)]
        self.rng.shuffle(channels)
        fresh = [self._fresh(channel) for channel in channels]
        repeats = self._repeats(fresh)
        exact = [self.rng.choice(fresh).exact_copy() for _ in range(self.exact_count)]
        drafts = sorted(fresh + repeats + exact, key=lambda d: d.row["created_at"])
        for number, draft in enumerate(drafts, start=1):
            draft.row["id"] = f"{ID_PREFIX}-{self.label}-{number:06d}"
            draft.row["created_at"] = draft.row["created_at"].isoformat(timespec="seconds")
        return drafts

    def _fresh(self, channel: Channel) -> Draft:
        topic = self._pick_topic(channel)
        segment, customer_id = self._customer(channel, topic)
        style = self._style(channel, segment)
        source = self._source_type(channel)
        text, pii = self._text(topic, style, channel, source)
        when = self._when(channel)
        metadata = CHANNEL_METADATA[channel](self.rng, when, topic, style)
        row = {
            "id": "",
            "created_at": when,
            "channel": VALUE[channel],
            "source_type": VALUE[source],
            "customer_id": customer_id,
            "customer_segment": VALUE[segment],
            "business": self._business(channel, topic),
            "text": text,
            "metadata": metadata,
        }
        return Draft(row, topic, style, pii)

    def _pick_topic(self, channel: Channel) -> Topic:
        kind = KIND_PICK[channel].pick(self.rng)
        if kind == RECURRING:
            return self.scenario_pick[channel].pick(self.rng)
        if self.spike_pick is not None and self.rng.random() < self.spike_chance:
            return self.spike_pick.pick(self.rng)
        if kind == CONSULT:
            return CONSULT_PICK.pick(self.rng)
        if kind == PRAISE:
            return PRAISE_PICK.pick(self.rng)
        return self.rng.choice(ONEOFFS)

    def _customer(self, channel: Channel, topic: Topic) -> tuple[Segment, str | None]:
        # Staff reports name the customer group they describe, but no customer.
        segment = SEGMENT_MIX[topic.key].pick(self.rng)
        if channel is Channel.SOCIAL:
            return Segment.UNKNOWN, None
        if channel is Channel.STAFF:
            return segment, None
        if channel is Channel.ROBOT and self.rng.random() < MIX.anonymous_robot_share:
            return Segment.UNKNOWN, None
        return segment, self.customers.pick(self.rng, segment)

    def _style(self, channel: Channel, segment: Segment) -> str:
        style = STYLE_PICK[channel].pick(self.rng)
        elderly_can_speak = style in (COLLOQUIAL, ASR, SHORT) and channel is not Channel.SOCIAL
        if segment is Segment.ELDERLY and elderly_can_speak and self.rng.random() < MIX.elderly_voice_share:
            return ELDERLY
        return style

    def _source_type(self, channel: Channel) -> SourceType:
        if channel is not Channel.STAFF:
            return SourceType.CUSTOMER
        return SourceType.FRONT_STAFF if self.rng.random() < 0.7 else SourceType.BACK_STAFF

    def _text(self, topic: Topic, style: str, channel: Channel, source: SourceType) -> tuple[str, PiiKind | None]:
        text = compose_text(topic, style, self.rng, source)
        if style == ELDERLY and channel is Channel.PHONE:
            text = asr(text, self.rng)
        if channel is Channel.SURVEY and self.rng.random() < 0.5:
            text = "回访中客户表示：" + text
        elif channel is Channel.BRANCH_BOOK and self.rng.random() < 0.3:
            text = "意见簿留言：" + text
        if source is SourceType.CUSTOMER and self.rng.random() < CUSTOMER_PII_CHANCE:
            return with_pii(text, style, self.rng)
        return text, None

    def _business(self, channel: Channel, topic: Topic) -> str | None:
        if topic.business is None or self.rng.random() < MISSING_BUSINESS[channel]:
            return None
        return VALUE[topic.business]

    def _when(self, channel: Channel) -> datetime:
        offset = TIME_PROFILE[channel].pick(self.rng) + int(self.rng.random() * 3600)
        return self.start + timedelta(seconds=offset)

    def _repeats(self, fresh: list[Draft]) -> list[Draft]:
        # Originals come from Monday to Friday so that a repeat one or two days later stays in the week.
        latest = self.start + timedelta(days=5)
        candidates = [d for d in fresh if d.can_repeat() and d.row["created_at"] < latest] or fresh
        return [self._repeat_of(self.rng.choice(candidates)) for _ in range(self.repeat_count)]

    def _repeat_of(self, origin: Draft) -> Draft:
        """The same customer again, 1–48 hours later, on the same or a related channel, in new or the same words."""
        rng = self.rng
        channel = Channel(origin.row["channel"])
        if rng.random() < 0.5:
            channel = rng.choice(REPEAT_TARGETS.get(channel, (channel,)))
        later = origin.row["created_at"] + timedelta(seconds=rng.randrange(3600, 48 * 3600))
        when = min(later, self.start + timedelta(days=7, seconds=-1))
        metadata = CHANNEL_METADATA[channel](rng, when, origin.topic, origin.style)
        row = {
            **origin.row,
            "created_at": when,
            "channel": VALUE[channel],
            "text": reworded(origin.row["text"], rng),
            "metadata": metadata,
        }
        return Draft(row, origin.topic, origin.style, origin.pii, repeat_of=origin)
