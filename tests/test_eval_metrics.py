"""The scorecard's metrics on small hand-made cases, and the outside-dataset adapter."""

import json
from pathlib import Path

from eval.baselines import tfidf_logreg
from eval.datasets import load_dataset
from eval.harness import check_gate
from eval.metrics import analysis_scores, application_scores, attribution_scores, clustering_scores, tracing_scores
from voc.contracts import Cluster, Dimension, Priority, Proposal, VoiceResult
from voc.periods import parse_week

OTP = {"issue": "G01", "owner": "信息科技部", "dimension": "机", "tag": "系统设备>登录认证>验证码收不到",
       "sentiment": "负面"}
GOLD = {
    "a": OTP,
    "b": OTP,
    "c": {"issue": "G02", "owner": "远程银行中心", "owner_ok": ["信息科技部"], "dimension": "环", "dims_ok": ["机"],
          "tag": "服务环境>人工可达>转人工困难", "sentiment": "负面"},
    "d": {"issue": "consult", "owner": "零售业务部", "sentiment": "中性"},
}
def _voice(voice_id: str, **fields: object) -> VoiceResult:
    return VoiceResult.model_validate({"id": voice_id, "owner_confidence": 0.8, "intensity": 2, "engine": "offline",
                                       **fields})


RAW_PRED = {
    "a": {"owner_department": "信息科技部", "needs_review": False, "dimension": "机", "sentiment": "负面",
          "tag": "系统设备>登录认证>验证码收不到", "cluster_id": "C001"},
    "b": {"owner_department": "远程银行中心", "needs_review": True, "dimension": "机", "sentiment": "中性",
          "tag": "系统设备>登录认证>人脸识别失败", "cluster_id": "C001"},
    "c": {"owner_department": "信息科技部", "needs_review": False, "dimension": "机", "sentiment": "负面",
          "tag": "服务环境>人工可达>转人工困难", "cluster_id": None},
    "d": {"owner_department": "零售业务部", "needs_review": False, "dimension": "物", "sentiment": "中性",
          "tag": "产品流程>办理流程>流程繁琐", "cluster_id": None},
}
PRED = {voice_id: _voice(voice_id, **fields) for voice_id, fields in RAW_PRED.items()}


def test_attribution_strict_acceptable_and_review() -> None:
    scores = attribution_scores(GOLD, PRED)
    assert scores["owner_accuracy"] == 0.5 and scores["owner_accuracy_acceptable"] == 0.75
    assert scores["needs_review_rate"] == 0.25 and scores["accuracy_without_review"] == 1.0
    assert scores["per_owner_recall"]["信息科技部"] == 0.5


def test_tracing_scores_only_labelled_fields() -> None:
    scores = tracing_scores(GOLD, PRED)
    assert scores["dimension"]["n"] == 3  # the consultation has no dimension label
    assert scores["dimension"]["accuracy"] == round(2 / 3, 4) and scores["dimension"]["accuracy_acceptable"] == 1.0
    assert scores["tag"]["accuracy"] == round(2 / 3, 4) and scores["tag"]["l2_accuracy"] == 1.0
    assert scores["sentiment"]["accuracy"] == 0.75


def test_clustering_treats_outliers_as_their_own_group() -> None:
    scores = clustering_scores(GOLD, {**PRED, "b": PRED["b"].model_copy(update={"sentiment": "负面"})})
    assert scores["n"] == 3 and scores["ari"] == 1.0


ISSUES = [{"id": "G01", "priority": "P1", "rising": True, "keywords": ["验证码"], "owner": "信息科技部"},
          {"id": "G02", "priority": "P3", "rising": False, "keywords": ["人工"], "owner": "远程银行中心"}]
CLUSTERS = [Cluster(
    cluster_id="C001", label="验证码收不到：验证码、短信", keywords=["验证码"], rising=True, priority=Priority.P2,
    size=2,
    voice_ids=["a", "b"], tag="系统设备>登录认证>验证码收不到", current_count=2, previous_count=0, distinct_customers=2,
    complaint_count=0, owner_department="信息科技部", dimension=Dimension.MACHINE, severity=4, impact=3, growth_z=2.0,
    representative_voice_ids=["a"], segments={}, channels={}, mean_intensity=3.0, threat_count=0, blocked_count=0)]


def test_analysis_matches_issues_to_majority_clusters() -> None:
    scores = analysis_scores(ISSUES, GOLD, PRED, CLUSTERS)
    assert scores["issues_found"] == 1 and scores["keyword_hit_rate"] == 0.5
    assert scores["spike_precision"] == 1.0 and scores["spike_recall"] == 1.0
    assert scores["priority_exact"] == 0.0 and scores["priority_within_one"] == 0.5
    assert scores["p1_in_top3"] == {"G01": True}


def test_application_groundedness() -> None:
    good = Proposal.model_validate({
        "proposal_id": "PR-1", "cluster_id": "C001", "owner_department": "信息科技部", "evidence_voice_ids": ["a"],
        "cited_case_ids": ["CASE-001"], "problem": "「验证码收不到」：2026-W45共2条负面声音（上期0条）",
        "root_cause": "【机】系统设备>登录认证>验证码收不到", "priority": "P2", "dimension": "机",
        "short_term_measures": ["排查短信通道"], "long_term_measures": ["建立通道监控"], "due_date": "2026-11-20",
        "kpis": [{"name": "负面声量", "baseline": 2, "target": 1, "rule": "P1：较基线下降50%（KD-001）"}]})
    invented = good.model_copy(update={"proposal_id": "x", "problem": good.problem + "，预计损失300万"})
    period = parse_week("2026-W45")
    scores = application_scores(ISSUES, GOLD, PRED, CLUSTERS, [good, invented], period, lambda c: True, {})
    assert scores["grounded"] == 0.5 and scores["evidence_valid"] == 1.0 and scores["owner_correct"] == 1.0
    assert scores["p1_p2_coverage"] == 1.0


def test_outside_dataset_with_partial_labels(tmp_path: Path) -> None:
    rows = [{"id": "x1", "created_at": "2026-11-05T10:00:00", "channel": "电话客服", "text": "排队太久",
             "sentiment": "负面"},
            {"id": "x2", "created_at": "2026-11-06T10:00:00", "channel": "在线客服", "text": "谢谢",
             "labels": {"sentiment": "正面", "issue": "praise"}}]
    path = tmp_path / "outside.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    dataset = load_dataset(str(path))
    assert dataset.current is not None and dataset.current.label == "2026-W45"
    assert dataset.labelled("sentiment") == 2 and dataset.labelled("owner") == 0
    assert "sentiment" not in dataset.rows[0] and "labels" not in dataset.rows[1]


def test_baseline_cross_validates() -> None:
    texts = ["验证码收不到"] * 6 + ["排队太久了"] * 6
    result = tfidf_logreg([t + str(i) for i, t in enumerate(texts)], ["机"] * 6 + ["环"] * 6)
    assert result["accuracy"] == 1.0 and result["folds"] == 5


def test_gate_reports_each_missed_threshold(tmp_path: Path) -> None:
    spec = tmp_path / "thresholds.yaml"
    spec.write_text("gold_v1:\n  offline:\n    tracing.sentiment.accuracy: 0.8\n    attribution.owner_accuracy: 0.5\n",
                    encoding="utf-8")
    card = {"dataset": "gold_v1", "tracing": {"sentiment": {"accuracy": 0.7}}, "attribution": {"owner_accuracy": 0.6}}
    gate = check_gate(card, "offline", spec)
    assert not gate["passed"] and [f["metric"] for f in gate["failures"]] == ["tracing.sentiment.accuracy"]
