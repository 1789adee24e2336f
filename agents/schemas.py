"""The validated outputs every engine (offline or LLM) must produce, and the `voc run` contract."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from voc.kb_models import Dimension

Sentiment = Literal["负面", "中性", "正面"]
EngineName = Literal["offline", "llm", "fallback"]
Priority = Literal["P1", "P2", "P3", "P4"]


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
    engine: EngineName = "offline"


class VoiceTrace(BaseModel):
    """溯源: sentiment, intensity, root-cause dimension and taxonomy tag of one voice."""

    voice_id: str
    sentiment: Sentiment
    intensity: int = Field(ge=1, le=5)
    dimension: Dimension
    tag: str = Field(description="L1>L2>L3 from the taxonomy")
    root_cause: str = Field(max_length=80)
    signals: list[str] = Field(default_factory=list, description="e.g. 监管威胁, 资金受阻, 讽刺")
    tag_confidence: float = Field(default=0.0, ge=0, le=1)
    engine: EngineName = "offline"


class Cluster(BaseModel):
    """分析: one common problem of the period (the clusters.json contract)."""

    cluster_id: str
    label: str
    keywords: list[str]
    size: int
    voice_ids: list[str]
    owner_department: str
    dimension: Dimension
    tag: str
    severity: int = Field(ge=1, le=5)
    impact: int = Field(ge=1, le=5)
    priority: Priority
    current_count: int
    previous_count: int
    rising: bool
    growth_z: float
    representative_voice_ids: list[str]
    distinct_customers: int
    complaint_count: int = Field(description="Voices of the complaint and regulator funnel tiers.")
    segments: dict[str, int]
    channels: dict[str, int]
    mean_intensity: float
    threat_count: int
    blocked_count: int


class Kpi(BaseModel):
    name: str
    baseline: float
    target: float
    unit: str = "件/周"
    rule: str = Field(description="How the target follows from the baseline.")


class Evidence(BaseModel):
    voice_id: str
    quote: str = Field(description="Masked excerpt of the voice.")


class Proposal(BaseModel):
    """应用: an owner-assigned improvement proposal (the proposals.json contract)."""

    proposal_id: str
    cluster_id: str
    priority: Priority
    owner_department: str
    dimension: Dimension
    problem: str
    root_cause: str
    short_term_measures: list[str] = Field(min_length=1)
    long_term_measures: list[str] = Field(min_length=1)
    kpis: list[Kpi] = Field(min_length=1)
    due_date: date
    evidence_voice_ids: list[str] = Field(min_length=1)
    evidence: list[Evidence] = Field(default_factory=list)
    cited_case_ids: list[str] = Field(default_factory=list)
    cited_doc_ids: list[str] = Field(default_factory=list)
    engine: EngineName = "offline"


class VoiceResult(BaseModel):
    """One line of voices.jsonl."""

    id: str
    owner_department: str
    owner_confidence: float
    dimension: Dimension
    tag: str
    sentiment: Sentiment
    intensity: int
    cluster_id: str | None
    needs_review: bool
    engine: EngineName
