"""How much of what in a week (mix.yaml): spikes, personal data, repeats, duplicates and segments."""

from __future__ import annotations

from pydantic import Field, field_validator

from voc.demo.channels import CHANNEL_SHARES
from voc.demo.data import Frozen, Weighted, load, require_keys
from voc.demo.topics import ALL_TOPICS, CONSULTS, PRAISES, SCENARIOS, Topic
from voc.models import Channel, Segment


class Mix(Frozen):
    """mix.yaml."""

    channel_jitter: float = Field(ge=0, lt=1)
    spikes: dict[str, float]
    pii_share: float = Field(ge=0, le=1)
    repeat_share: float = Field(ge=0, le=1)
    exact_duplicates_per_1000: int = Field(ge=0)
    anonymous_robot_share: float = Field(ge=0, le=1)
    elderly_voice_share: float = Field(ge=0, le=1)
    segments: dict[Segment, float]
    customer_pools: dict[Segment, float]

    @field_validator("spikes")
    @classmethod
    def _recurring_scenarios(cls, spikes: dict[str, float]) -> dict[str, float]:
        if unknown := set(spikes) - {t.key for t in SCENARIOS}:
            raise ValueError(f"spikes name no recurring scenario: {sorted(unknown)}")
        return spikes

    @field_validator("segments", "customer_pools")
    @classmethod
    def _every_segment(cls, shares: dict[Segment, float]) -> dict[Segment, float]:
        require_keys(shares, set(Segment), "segments and customer_pools")
        return shares


MIX = load("mix.yaml", Mix)
SPIKES = MIX.spikes
# Staff reports carry no customer data, so customer rows carry a little more to reach pii_share overall.
CUSTOMER_PII_CHANCE = MIX.pii_share / (1 - CHANNEL_SHARES[Channel.STAFF])


def _segment_mix(topic: Topic) -> Weighted[Segment]:
    return Weighted((s, w * topic.segments.get(s, 1.0)) for s, w in MIX.segments.items())


SEGMENT_MIX = {key: _segment_mix(topic) for key, topic in ALL_TOPICS.items()}
CONSULT_PICK = Weighted((t, t.weight) for t in CONSULTS)
PRAISE_PICK = Weighted((t, t.weight) for t in PRAISES)


def rows_per_week(per_week: int) -> dict[str, int]:
    """How each week's `per_week` rows split into fresh rows, repeat contacts and exact duplicates."""
    exact = max(1, per_week * MIX.exact_duplicates_per_1000 // 1000) if per_week >= 50 else 0
    repeats = round(per_week * MIX.repeat_share)
    return {"fresh": per_week - exact - repeats, "repeats": repeats, "exact_duplicates": exact}
