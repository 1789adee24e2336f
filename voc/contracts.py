"""The output contract of `voc run` and the product's one vocabulary.

Everything downstream of a weekly run (the report, the closed loop, the `proposals` MCP server, the
eval harness, the API, the chat) reads the four files written here, through the models here. The
file and field names are shared with readers outside this repository: extend them, never rename.

The controlled words — the 人机物法环 dimensions, the three sentiments, the escalation signals, the
priorities and the proposal statuses — are spelled once, in this module. This module imports nothing
from the product, so every layer (core, MCP servers, agents, app, CLI, eval) may import it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VOICES_FILE = "voices.jsonl"
CLUSTERS_FILE = "clusters.json"
PROPOSALS_FILE = "proposals.json"
SUMMARY_FILE = "run.json"


class Dimension(StrEnum):
    """人机物法环: the five root-cause dimensions of the standard's attribution method."""

    PEOPLE = "人"
    MACHINE = "机"
    MATERIAL = "物"
    METHOD = "法"
    ENVIRONMENT = "环"

    @property
    def label(self) -> str:
        """The dimension's reading for a report: 人员服务, 系统设备, …"""
        return _DIMENSION_LABELS[self]


_DIMENSION_LABELS = {Dimension.PEOPLE: "人员服务", Dimension.MACHINE: "系统设备", Dimension.MATERIAL: "产品流程",
                     Dimension.METHOD: "规则合规", Dimension.ENVIRONMENT: "服务环境"}


class Sentiment(StrEnum):
    NEGATIVE = "负面"
    NEUTRAL = "中性"
    POSITIVE = "正面"


class Signal(StrEnum):
    """Escalation signals found in a voice's text; they raise severity and urgency."""

    SARCASM = "讽刺"
    THREAT = "监管/媒体威胁"
    BLOCKED = "资金或业务受阻"


class Priority(StrEnum):
    """P1 (act this week) to P4 (watch), from severity × impact."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """1 for P1 … 4 for P4: sort by it, most urgent first."""
        return int(self.value[1])

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return cls(f"P{min(4, max(1, rank))}")


class ProposalStatus(StrEnum):
    """The closed loop of a proposal (闭环管理): 待认领 → 整改中 → 已完成 → 已验证 / 未达标."""

    CLAIM = "待认领"
    FIXING = "整改中"
    DONE = "已完成"
    VERIFIED = "已验证"
    FAILED = "未达标"


# Not fixed yet: these are the analyst's open work and can be overdue.
OPEN_STATUSES = (ProposalStatus.CLAIM, ProposalStatus.FIXING, ProposalStatus.FAILED)


class Engine(StrEnum):
    """Who decided a result: the offline engine, the LLM, or the offline engine after the LLM failed."""

    OFFLINE = "offline"
    LLM = "llm"
    FALLBACK = "fallback"

    @classmethod
    def combined(cls, engines: Iterable[str]) -> Engine:
        """One label for a result several engines worked on: any fallback shows, then any LLM."""
        seen = set(engines)
        return cls.FALLBACK if cls.FALLBACK in seen else cls.LLM if cls.LLM in seen else cls.OFFLINE


# The engines a run or a chat can be started with (fallback is only ever a result's label).
RunEngine = Literal[Engine.OFFLINE, Engine.LLM]


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
    engine: Engine


class Cluster(BaseModel):
    """分析: one common problem of the period (one item of clusters.json)."""

    cluster_id: str = Field(description="The problem's stable id across weeks (PB-0007, voc/problems.py): a "
                            "recurring problem keeps it; clusters built outside a weekly run may use others.")
    label: str = Field(description="The problem's name: the analyst's when one was given (voc problems rename), "
                       "else the run's own.")
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
    incident_id: str | None = Field(default=None, description="The incident this problem is a symptom of, if any.")
    business: str | None = Field(default=None, description="The business most of its voices are about, if any.")


MAX_TEXT = 2000  # a proposal's prose field; longer is not something the product writes


class Kpi(BaseModel):
    name: str = Field(max_length=200)
    baseline: int = Field(ge=0)
    target: int = Field(ge=0, description="Strictly below the baseline.")
    unit: str = Field(default="件/周", max_length=20)
    rule: str = Field(description="How the target follows from the baseline.")


class Evidence(BaseModel):
    voice_id: str
    quote: str = Field(description="Masked excerpt of the voice.")


Measure = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
TAG_SOURCE = "tag:"  # a measure_sources source that names a tag: its typical measures in the data dictionary


class MeasureSource(BaseModel):
    measure: Measure
    source: str = Field(max_length=200, description="CASE-…, KD-… or tag:L1>L2>L3.")


class Proposal(BaseModel):
    """应用: an owner-assigned improvement proposal (one item of proposals.json)."""

    proposal_id: str = Field(min_length=1, max_length=64)
    cluster_id: str = Field(min_length=1, max_length=64)
    priority: Priority
    owner_department: str = Field(min_length=1, max_length=100)
    dimension: Dimension
    problem: str = Field(min_length=1, max_length=MAX_TEXT)
    root_cause: str = Field(max_length=MAX_TEXT)
    short_term_measures: list[Measure] = Field(min_length=1, max_length=50)
    long_term_measures: list[Measure] = Field(min_length=1, max_length=50)
    kpis: list[Kpi] = Field(min_length=1, max_length=20)
    due_date: date
    evidence_voice_ids: list[str] = Field(min_length=1)
    evidence: list[Evidence] = Field(default_factory=list)
    cited_case_ids: list[str] = Field(default_factory=list)
    cited_doc_ids: list[str] = Field(default_factory=list)
    engine: Engine = Engine.OFFLINE
    cluster_ids: list[str] = Field(default_factory=list,
                                   description="Every problem the proposal covers; cluster_id is the main symptom.")
    incident_id: str | None = Field(default=None, description="The incident the proposal answers, if any.")
    measure_sources: list[MeasureSource] = Field(
        default_factory=list, description="Where each measure comes from: a case, a document or the tag's typical "
                                          "measures in the data dictionary (tag:L1>L2>L3).")


class ProblemView(Cluster):
    """A cluster with the id of the proposal written for it (null when it has none)."""

    proposal_id: str | None = None


class Incident(BaseModel):
    """Symptoms linked to one root cause (run.json `incidents`): a release, a rule or fee change, a
    system change, or the same onset with co-rising volumes in one business and owner."""

    incident_id: str
    cluster_ids: list[str] = Field(min_length=2)
    owner_department: str
    cause: str = Field(description="The shared cause signal, in words (e.g. 手机银行新版本上线).")
    onset: date | None = Field(default=None, description="The first day the symptoms rose together.")


class Unproposed(BaseModel):
    """A P1–P3 problem left without a proposal, and why (run.json `unproposed`)."""

    cluster_id: str
    priority: Priority
    reason: str


class PeriodRef(BaseModel):
    start: date
    end: date
    label: str


class RunCounts(BaseModel):
    """The run's headline counts (run.json `counts`); the dimension maps count negative voices."""

    model_config = ConfigDict(extra="allow")

    voices: int = 0
    previous_voices: int = 0
    sentiment: dict[Sentiment, int] = Field(default_factory=dict)
    negative: int = 0
    needs_review: int = 0
    clusters: int = 0
    clustered: int = 0
    outliers: int = 0
    priorities: dict[Priority, int] = Field(default_factory=dict)
    rising: int = 0
    proposals: int = 0
    dimensions: dict[Dimension, int] = Field(default_factory=dict)
    previous_negative: int = 0
    previous_dimensions: dict[Dimension, int] = Field(default_factory=dict)


class RunSummary(BaseModel):
    """run.json: what ran, on which period, with what counts, timings and model usage."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    period: PeriodRef
    previous_period: PeriodRef
    engine: Engine
    counts: RunCounts = Field(default_factory=RunCounts)
    outlier_rate: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)
    llm: dict[str, Any] = Field(default_factory=dict)
    tool_calls: dict[str, int] = Field(default_factory=dict)
    prompts: dict[str, str] = Field(default_factory=dict,
                                    description="Prompt template versions the LLM engine used (empty offline).")
    incidents: list[Incident] = Field(default_factory=list)
    unproposed: list[Unproposed] = Field(default_factory=list)


class RunOutputs(BaseModel):
    """The four files of a weekly run, written and read only here."""

    summary: RunSummary
    voices: list[VoiceResult]
    clusters: list[Cluster]
    proposals: list[Proposal]

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / VOICES_FILE).open("w", encoding="utf-8") as handle:
            for voice in self.voices:
                handle.write(voice.model_dump_json() + "\n")
        _write_json(directory / CLUSTERS_FILE, [c.model_dump(mode="json") for c in self.clusters])
        _write_json(directory / PROPOSALS_FILE, [p.model_dump(mode="json") for p in self.proposals])
        # The summary last: a folder with run.json is a finished run for every reader.
        _write_json(directory / SUMMARY_FILE, self.summary.model_dump(mode="json"))

    @classmethod
    def load(cls, directory: Path) -> RunOutputs:
        return cls(summary=read_summary(directory), voices=read_voices(directory),
                   clusters=read_clusters(directory), proposals=read_proposals(directory))

    @staticmethod
    def is_complete(directory: Path) -> bool:
        return all((directory / name).exists() for name in (VOICES_FILE, CLUSTERS_FILE, PROPOSALS_FILE, SUMMARY_FILE))


def read_summary(directory: Path) -> RunSummary:
    return RunSummary.model_validate_json((directory / SUMMARY_FILE).read_text(encoding="utf-8"))


def read_voices(directory: Path) -> list[VoiceResult]:
    with (directory / VOICES_FILE).open(encoding="utf-8") as handle:
        return [VoiceResult.model_validate_json(line) for line in handle if line.strip()]


def read_clusters(directory: Path) -> list[Cluster]:
    return [Cluster.model_validate(item) for item in _read_json(directory / CLUSTERS_FILE)]


def read_proposals(directory: Path) -> list[Proposal]:
    return [Proposal.model_validate(item) for item in _read_json(directory / PROPOSALS_FILE)]


def latest_run_dir(runs_dir: Path, label: str, engine: Engine | None = Engine.OFFLINE) -> Path | None:
    """The newest complete run of a period (with this engine, unless None), if any."""
    found: list[tuple[float, str]] = []
    for path in runs_dir.glob(f"*/{SUMMARY_FILE}"):
        try:
            summary = read_summary(path.parent)
        except (OSError, ValueError):  # a half-written or foreign run.json is not a run
            continue
        if summary.period.label == label and engine in (None, summary.engine) and RunOutputs.is_complete(path.parent):
            found.append((path.stat().st_mtime, str(path.parent)))
    return Path(max(found)[1]) if found else None


def _read_json(path: Path) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return value


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
