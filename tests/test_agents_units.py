"""The offline algorithms of the agents, tested directly (no MCP, no embeddings)."""

import random
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from agents.application import draft_proposal
from agents.clustering import Composition, cluster_labels, compose, settle_small_groups
from agents.drafting import Subject, kpis_for, matching_cases, target_of
from agents.incidents import Evidence, link
from agents.naming import keywords_by_cluster, problem_label
from agents.problem_text import Boilerplate
from agents.scoring import priority_of, rising_flags, rising_test
from voc.contracts import Cluster
from voc.lexicon import analyse
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
    first = settle_small_groups(cluster_labels(vectors, 0.2, coarse), vectors, 3, 0.95)
    again = settle_small_groups(cluster_labels(vectors, 0.2, coarse), vectors, 3, 0.95)
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


def test_kpi_targets_are_integers_strictly_below_their_baselines() -> None:
    kpis = {k.name: k for k in kpis_for(Subject([_cluster("P2")]))}
    assert kpis["同类问题负面声量"].baseline == 12 and kpis["同类问题负面声量"].target == 8  # floor(12 × 0.7)
    assert kpis["升级为投诉及监管转送的声量"].baseline == 4
    assert all("P2" in k.rule and k.target < k.baseline for k in kpis.values())
    assert [target_of(b, 0.1) for b in (1, 2, 5, 10)] == [0, 1, 4, 9]  # never target = baseline


def test_proposal_is_grounded_in_cluster_facts() -> None:
    cluster = _cluster()
    quotes = {v: f"我的手机13812345678收不到验证码，第{i}次了" for i, v in enumerate(cluster.voice_ids)}
    voices = {v: {"text": text, "created_at": "2026-11-18T10:00:00"} for v, text in quotes.items()}
    cases = [{"id": "CASE-007", "tag": cluster.tag, "short_term_measures": ["临时扩容短信通道", "在3天内回访客户"],
              "long_term_measures": ["建立短信到达率监控"]},
             {"id": "CASE-099", "tag": "系统设备>应用运行>闪退无法打开", "short_term_measures": ["回滚新版本"],
              "long_term_measures": ["灰度发布"]}]
    docs = [{"doc_id": "KD-026", "title": "短信验证码问题排查指引"}]
    tag = {"short_term_measures": ["核查短信通道到达率"], "long_term_measures": ["验证码与营销短信分队列"]}
    proposal = draft_proposal(Subject([cluster]), 1, date(2026, 11, 22), "2026-W47", True, voices, docs, cases,
                              tag, WorkCalendar(), 5)
    assert proposal.due_date == date(2026, 11, 27)  # P1: five working days after Sunday 22nd
    assert proposal.evidence_voice_ids[:3] == ["v3", "v1", "v7"]
    assert set(proposal.evidence_voice_ids) <= set(cluster.voice_ids)
    assert all("13812345678" not in e.quote and "[手机号]" in e.quote for e in proposal.evidence)
    assert "在3天内回访客户" not in proposal.short_term_measures  # another bank's figure is not ours
    facts = {"12", "3", "11", "4", "2026", "47"}  # counts and the period label
    assert set(re.findall(r"\d+", proposal.problem)) <= facts
    assert proposal.cited_case_ids == ["CASE-007"] and proposal.cited_doc_ids == ["KD-026"]  # not the crash case
    assert "回滚新版本" not in proposal.short_term_measures  # a measure from another scene is never used
    sources = {m.measure: m.source for m in proposal.measure_sources}
    assert sources["临时扩容短信通道"] == "CASE-007" and sources["核查短信通道到达率"] == f"tag:{cluster.tag}"
    assert proposal.cluster_ids == ["C001"] and "11位客户" in proposal.root_cause


def test_cluster_order_does_not_depend_on_input_order() -> None:
    vectors = _blobs(3)
    order = list(range(len(vectors)))
    random.Random(5).shuffle(order)
    # The analysis agent sorts members by voice id before clustering; same rows, same labels.
    canonical = np.argsort(order)
    shuffled = vectors[order]
    labels = settle_small_groups(cluster_labels(shuffled[canonical], 0.2, 1500), shuffled[canonical], 3, 0.95)
    reference = settle_small_groups(cluster_labels(vectors, 0.2, 1500), vectors, 3, 0.95)
    assert labels.tolist() == reference.tolist()


def test_boilerplate_is_stripped_and_learned_across_unrelated_tags() -> None:
    floor = Boilerplate(("客户来电反映", "你们到底管不管"), ("嗯", "那个"))
    assert floor.clean("客户来电反映：嗯那个验证码一直收不到！你们到底管不管[手机号]") == "验证码一直收不到"
    problems = ["信用卡年费被扣", "手机银行闪退", "网点排队太久", "理财亏损误导", "催收骚扰家人", "转账没到账"]
    texts = [f"金融监管总局12378热线转来投诉：消费者称其{p}，请贵行按规定时限处理" for p in problems]
    learned = floor.with_learned(texts, [f"tag{i}" for i in range(len(texts))])
    assert [learned.clean(t) for t in texts] == problems
    same_tag = floor.with_learned(texts, ["one tag"] * len(texts))  # one problem's own words are not boilerplate
    assert same_tag.learned == ()


def test_composed_vectors_weigh_the_fields_beside_the_text() -> None:
    rng = np.random.default_rng(2)
    text = rng.normal(size=(4, 16))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    plain = compose(text, ["a", "a", "b", "b"], ["x"] * 4, [""] * 4, Composition())
    heavy = compose(text, ["a", "a", "b", "b"], ["x"] * 4, [""] * 4, Composition(tag=3.0))
    assert float(heavy[0] @ heavy[1]) > float(plain[0] @ plain[1])  # the same tag pulls together
    assert np.allclose(np.linalg.norm(heavy, axis=1), 1.0)


def test_rising_needs_a_previous_period_and_enough_voices() -> None:
    assert rising_test(30, 8, True)[0] and not rising_test(30, 8, False)[0]  # 首周无对比
    assert not rising_test(4, 0, True)[0]  # too few voices to call a rise
    assert not rising_test(12, 10, True)[0]
    assert rising_flags([0.001, 0.04, 0.5]) == [True, False, False]  # 0.04 alone would pass; not among three


def test_symptoms_that_name_one_release_become_one_incident() -> None:
    crash = _cluster().model_copy(update={"cluster_id": "C001", "owner_department": "信息科技部"})
    face = _cluster().model_copy(update={"cluster_id": "C002", "tag": "系统设备>登录认证>人脸识别失败"})
    fee = _cluster().model_copy(update={"cluster_id": "C003", "owner_department": "信用卡中心", "rising": False})
    day = date(2026, 11, 17)
    incidents = link([Evidence(crash, ["升级后一打开就闪退", "更新了新版本就闪退"] * 3, [day] * 6, "手机银行"),
                      Evidence(face, ["新版本人脸识别一直失败", "升级以后刷脸过不去"] * 3, [day] * 6, "手机银行"),
                      Evidence(fee, ["年费扣了两次", "年费太贵"] * 3, [day] * 6, "信用卡")])
    assert [(i.cluster_ids, i.owner_department) for i in incidents] == [(["C001", "C002"], "信息科技部")]
    assert "版本发布" in incidents[0].cause and incidents[0].onset == day


def test_cases_of_another_scene_are_never_cited() -> None:
    subject = Subject([_cluster()])
    cases = [{"id": "A", "tag": "系统设备>应用运行>闪退无法打开"}, {"id": "B", "tag": "系统设备>登录认证>人脸识别失败"},
             {"id": "C", "tag": "系统设备>登录认证>验证码收不到"}]
    assert [c["id"] for c in matching_cases(subject, cases)] == ["C", "B"]  # same L3, then same L2 group
    card = Subject([_cluster().model_copy(update={"tag": "产品流程>收费定价>年费管理费", "business": "信用卡"})])
    fees = [{"id": "DEBIT", "tag": "产品流程>收费定价>年费管理费", "business": "借记卡"},
            {"id": "CARD", "tag": "产品流程>收费定价>年费管理费", "business": "信用卡"}]
    assert [c["id"] for c in matching_cases(card, fees)] == ["CARD", "DEBIT"]  # the problem's own business first


def test_a_label_reads_like_a_problem_title() -> None:
    texts = ["验证码收不到", "短信验证码收不到", "验证码一直收不到登录不了"]
    keywords = keywords_by_cluster([texts, ["年费太贵", "年费扣了"]])[0]
    assert problem_label(keywords, texts, "手机银行", "验证码收不到").startswith("手机银行")
