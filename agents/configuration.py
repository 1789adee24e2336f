"""Run configuration: the engine and the tunable thresholds of the offline algorithms."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.clustering import Composition
from voc.contracts import Engine, Priority, RunEngine

# Working days to close a proposal, by priority (knowledge document KD-001).
SLA_WORKING_DAYS = {Priority.P1: 5, Priority.P2: 10, Priority.P3: 20, Priority.P4: 40}
# KPI targets: reduction of the problem's weekly volume against its baseline (KD-001).
TARGET_REDUCTION = {Priority.P1: 0.5, Priority.P2: 0.3, Priority.P3: 0.2, Priority.P4: 0.1}


class Configuration(BaseModel):
    engine: RunEngine = Engine.OFFLINE
    page_size: int = Field(default=200, ge=1, description="Voices per tickets.search_voices call.")
    batch_size: int = Field(default=250, ge=1, le=500, description="Voices per knowledge batch call.")
    composition: Composition = Field(default_factory=Composition, description="超级嵌入 block weights.")
    cluster_distance: float = Field(default=0.75, gt=0, lt=2, description="Average-linkage cosine cut.")
    attach_similarity: float = Field(default=0.15, gt=-1, le=1, description="Join a small group to a cluster.")
    duplicate_similarity: float = Field(default=0.6, gt=-1, le=1,
                                        description="Two problems of one owner and tag this close are one.")
    min_cluster_size: int = Field(default=3, ge=2)
    coarse_group_size: int = Field(default=1500, ge=10, description="Above this, cluster in coarse groups.")
    proposal_priorities: tuple[Priority, ...] = (Priority.P1, Priority.P2, Priority.P3)
    max_proposals: int | None = Field(default=None, ge=1, description="A cap per run; what it leaves out is "
                                                                       "listed in run.json `unproposed`.")
    evidence_per_proposal: int = Field(default=5, ge=1)
