"""Complete output-contract objects for tests, with every field filled; a test names only what it is about."""

from __future__ import annotations

from typing import Any

from voc.contracts import Cluster, Proposal, RunSummary

CLUSTER_DEFAULTS: dict[str, Any] = {
    "cluster_id": "C001", "label": "验证码收不到：验证码、短信", "keywords": ["验证码", "收不到", "短信"], "size": 20,
    "voice_ids": ["v1"], "owner_department": "信息科技部", "dimension": "机", "tag": "系统设备>登录认证>验证码收不到",
    "severity": 4, "impact": 3, "priority": "P2", "current_count": 20, "previous_count": 10, "rising": True,
    "growth_z": 2.5, "representative_voice_ids": ["v1"], "distinct_customers": 18, "complaint_count": 2,
    "segments": {"个人": 20}, "channels": {"电话客服": 20}, "mean_intensity": 3.0, "threat_count": 0,
    "blocked_count": 0}

PROPOSAL_DEFAULTS: dict[str, Any] = {
    "proposal_id": "PR-2026-W40-001", "cluster_id": "C001", "priority": "P2", "owner_department": "信息科技部",
    "dimension": "机", "problem": "验证码收不到", "root_cause": "短信通道", "short_term_measures": ["扩容"],
    "long_term_measures": ["监控"], "due_date": "2026-10-09", "evidence_voice_ids": ["v1"],
    "kpis": [{"name": "同类问题负面声量", "baseline": 20, "target": 14, "unit": "件/周", "rule": "下降30%"}]}


def cluster_dict(**fields: Any) -> dict[str, Any]:
    return Cluster.model_validate(CLUSTER_DEFAULTS | fields).model_dump(mode="json")


def proposal_dict(**fields: Any) -> dict[str, Any]:
    return Proposal.model_validate(PROPOSAL_DEFAULTS | fields).model_dump(mode="json")


def summary_dict(run_id: str, start: str, end: str, label: str, **fields: Any) -> dict[str, Any]:
    period = {"start": start, "end": end, "label": label}
    return RunSummary.model_validate({"run_id": run_id, "period": period, "previous_period": period,
                                      "engine": "offline", **fields}).model_dump(mode="json")
