"""The offline algorithms of the agents, tested directly (no MCP, no embeddings)."""

import random
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from agents.analysis import cluster_labels, keywords_by_cluster, priority_of, settle_small_groups
from agents.application import draft_proposal, kpis_for
from agents.configuration import Configuration
from agents.sentiment import analyse
from voc.contracts import Cluster
from voc.workdays import WorkCalendar


@pytest.mark.parametrize(("text", "channel", "sentiment"), [
    ("谢谢小王，服务很耐心，问题一次就解决了", "满意度回访", "正面"),
    ("请问怎么开通手机银行", "智能客服机器人", "中性"),
    ("营业时间是几点", "智能客服机器人", "中性"),
    ("验证码一直收不到，登录不了！！", "电话客服", "负面"),
    ("验证码收不到怎么办", "智能客服机器人", "负面"),
    ("呵呵，真是太好了，又多扣我年费", "社交媒体", "负面"),
    ("不满意，等了四十分钟才接通", "满意度回访", "负面"),
    ("没问题，已经解决了，谢谢", "满意度回访", "正面"),
])
def test_sentiment(text: str, channel: str, sentiment: str) -> None:
    assert analyse(text, channel).sentiment == sentiment


def test_threats_and_blocked_funds_raise_intensity() -> None:
    plain = analyse("年费扣得不合理", "电话客服")
    escalated = analyse("卡被冻结了工资取不出，再不解决我就打12378投诉！", "投诉工单")
    assert escalated.intensity == 5 > plain.intensity
    assert {"监管/媒体威胁", "资金或业务受阻"} <= set(escalated.signals)


def test_priority_matrix_follows_kd001() -> None:
    grid = [[priority_of(s, i) for i in range(1, 6)] for s in range(1, 6)]
    assert grid[4][4] == grid[3][3] == "P1"
    assert grid[4][2] == grid[2][4] == "P2"
    assert grid[4][0] == grid[2][2] == grid[0][4] == "P3"
    assert grid[2][0] == grid[0][2] == grid[0][0] == "P4"


def _blobs(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 32))
    points = np.vstack([c + rng.normal(scale=0.05, size=(15, 32)) for c in centres] + [rng.normal(size=(2, 32))])
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.mark.parametrize("coarse", [1000, 20])
def test_clusters_are_deterministic_and_find_the_groups(coarse: int) -> None:
    vectors = _blobs()
    config = Configuration(cluster_distance=0.2, attach_similarity=0.95, coarse_group_size=coarse)
    first = settle_small_groups(cluster_labels(vectors, config), vectors, config)
    again = settle_small_groups(cluster_labels(vectors, config), vectors, config)
    assert first.tolist() == again.tolist()
    assert first.max() + 1 == 4 and (first[-2:] == -1).all()
    assert all(len(set(first[i * 15 : (i + 1) * 15])) == 1 for i in range(4))


def test_keywords_prefer_words_specific_to_a_cluster() -> None:
    keywords = keywords_by_cluster([["验证码收不到，短信验证码一直不来", "收不到验证码"], ["年费扣了两次", "年费太贵"]])
    assert "验证码" in keywords[0] and "年费" in keywords[1]


def test_working_days_skip_weekends_and_holidays() -> None:
    calendar = WorkCalendar(holidays=frozenset({date(2027, 1, 1)}), workdays=frozenset({date(2026, 12, 26)}))
    assert calendar.add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Friday → Monday
    assert calendar.add_working_days(date(2026, 12, 31), 1) == date(2027, 1, 4)  # holiday + weekend
    assert calendar.add_working_days(date(2026, 12, 25), 1) == date(2026, 12, 26)  # a worked Saturday
    assert calendar.working_days_between(date(2026, 11, 20), date(2026, 11, 27)) == 5


def test_statutory_holidays_and_adjusted_weekends_come_from_the_maintained_calendar(tmp_path: Path) -> None:
    calendar = WorkCalendar.load(tmp_path / "none.yaml")
    assert calendar.is_working_day(date(2026, 2, 14))  # a Saturday worked for the Spring Festival (调休)
    assert not calendar.is_working_day(date(2026, 2, 16)) and not calendar.is_working_day(date(2026, 10, 5))
    # Friday 2026-09-25 (Mid-Autumn) is off: a P1 raised on Thursday is due five working days on.
    assert calendar.add_working_days(date(2026, 9, 24), 1) == date(2026, 9, 28)
    own = tmp_path / "bank.yaml"
    own.write_text("holidays: [2026-11-23]\nworkdays: [2026-10-05]\n", encoding="utf-8")
    bank = WorkCalendar.load(own)
    assert not bank.is_working_day(date(2026, 11, 23)) and bank.is_working_day(date(2026, 10, 5))
    assert bank.uncovered_years(date(2026, 12, 1), date(2026, 12, 31)) == []
    assert calendar.uncovered_years(date(2026, 12, 28), date(2099, 1, 8))[-1] == 2099


def _cluster(priority: str = "P1", rising: bool = True) -> Cluster:
    ids = [f"v{i}" for i in range(12)]
    return Cluster(cluster_id="C001", label="验证码收不到：验证码、短信", keywords=["验证码", "短信", "登录"], size=12,
                   voice_ids=ids, owner_department="信息科技部", dimension="机", tag="系统设备>登录认证>验证码收不到",
                   severity=4, impact=4, priority=priority, current_count=12, previous_count=3, rising=rising,
                   growth_z=2.0, representative_voice_ids=["v3", "v1", "v7"], distinct_customers=11, complaint_count=4,
                   segments={"个人": 12}, channels={"电话客服": 8, "投诉工单": 4}, mean_intensity=3.5, threat_count=1,
                   blocked_count=6)


def test_kpi_targets_follow_the_priority_rule() -> None:
    kpis = {k.name: k for k in kpis_for(_cluster("P2"))}
    assert kpis["同类问题负面声量"].baseline == 12 and kpis["同类问题负面声量"].target == round(12 * 0.7)
    assert kpis["升级为投诉及监管转送的声量"].baseline == 4
    assert all("P2" in k.rule for k in kpis.values())


def test_proposal_is_grounded_in_cluster_facts() -> None:
    cluster = _cluster()
    quotes = {v: f"我的手机13812345678收不到验证码，第{i}次了" for i, v in enumerate(cluster.voice_ids)}
    cases = [{"id": "CASE-007", "short_term_measures": ["临时扩容短信通道", "在3天内回访客户"],
              "long_term_measures": ["建立短信到达率监控"]}]
    docs = [{"doc_id": "KD-026", "title": "短信验证码问题排查指引"}]
    proposal = draft_proposal(cluster, 1, date(2026, 11, 22), "2026-W47", quotes, docs, cases,
                              WorkCalendar(), 5)
    assert proposal.due_date == date(2026, 11, 27)  # P1: five working days after Sunday 22nd
    assert proposal.evidence_voice_ids[:3] == ["v3", "v1", "v7"]
    assert set(proposal.evidence_voice_ids) <= set(cluster.voice_ids)
    assert all("13812345678" not in e.quote and "[手机号]" in e.quote for e in proposal.evidence)
    assert "在3天内回访客户" not in proposal.short_term_measures  # another bank's figure is not ours
    facts = {"12", "3", "11", "4", "2026", "47"}  # counts and the period label
    assert set(re.findall(r"\d+", proposal.problem)) <= facts
    assert proposal.cited_case_ids == ["CASE-007"] and proposal.cited_doc_ids == ["KD-026"]


def test_cluster_order_does_not_depend_on_input_order() -> None:
    vectors = _blobs(3)
    config = Configuration(cluster_distance=0.2, attach_similarity=0.95)
    order = list(range(len(vectors)))
    random.Random(5).shuffle(order)
    # The analysis agent sorts members by voice id before clustering; same rows, same labels.
    canonical = np.argsort(order)
    shuffled = vectors[order]
    labels = settle_small_groups(cluster_labels(shuffled[canonical], config), shuffled[canonical], config)
    reference = settle_small_groups(cluster_labels(vectors, config), vectors, config)
    assert labels.tolist() == reference.tolist()
