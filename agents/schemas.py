"""What the agents exchange about one voice, validated whatever engine (offline or LLM) produced it.
The run's output contract (clusters, proposals, voices.jsonl, run.json) lives in `voc.contracts`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from voc.contracts import Dimension, Engine, Sentiment, Signal


class VoiceInput(BaseModel):
    """What an agent sees of a voice: masked text plus the attributes it may use. Never metadata:
    free metadata can carry anything, including a generator's answers."""

    id: str
    text: str
    channel: str
    business: str | None = None
    segment: str = "未知"
    funnel_tier: int
    customer_id: str | None = None
    created_at: str


class OwnerScore(BaseModel):
    owner: str
    score: float


class VoiceAttribution(BaseModel):
    """归因: the responsible owner department of one voice."""

    voice_id: str
    owner_department: str
    owner_confidence: float = Field(ge=0, le=1)
    needs_review: bool
    candidates: list[OwnerScore] = Field(default_factory=list)
    reason: str = ""
    engine: Engine = Engine.OFFLINE


class VoiceTrace(BaseModel):
    """溯源: sentiment, intensity, root-cause dimension and taxonomy tag of one voice."""

    voice_id: str
    sentiment: Sentiment
    intensity: int = Field(ge=1, le=5)
    dimension: Dimension
    tag: str = Field(description="L1>L2>L3 from the taxonomy")
    root_cause: str = Field(max_length=80)
    signals: list[Signal] = Field(default_factory=list)
    tag_confidence: float = Field(default=0.0, ge=0, le=1)
    engine: Engine = Engine.OFFLINE
