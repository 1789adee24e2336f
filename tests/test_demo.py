from __future__ import annotations

import csv
import json
import random
import re
import string
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

import pytest

from voc import demo
from voc.demo import data, people, styles
from voc.demo.topics import Topic
from voc.models import Channel, FunnelTier, Voice, funnel_tier
from voc.periods import parse_week
from voc.pii import id_check_char, is_id_number, luhn_valid

WEEKS, PER_WEEK, SEED, END_WEEK = 8, 500, 7, "2026-W47"

MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_CARD = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
CARD = re.compile(r"(?<![\d ])(?:\d{4} ?){3}\d{4}(?: ?\d{3})?(?![\d ])")


# What a real export of each channel carries in its metadata; the generator's answers are not part of it.
CHANNEL_FIELDS = {
    Channel.ROBOT: {"session_id", "turns", "transferred_to_agent"},
    Channel.PHONE: {"call_id", "duration_s", "asr_confidence"},
    Channel.ONLINE: {"session_id", "turns"},
    Channel.APP_FEEDBACK: {"app_version", "os", "device"},
    Channel.SOCIAL: {"platform", "likes", "reposts"},
    Channel.BRANCH_BOOK: {"branch"},
    Channel.SURVEY: {"survey_type", "survey_score", "scale", "surveyed_channel"},
    Channel.STAFF: {"report_no"},
    Channel.COMPLAINT: {"ticket_no", "complaint_level", "sla_days"},
    Channel.REGULATOR: {"ticket_no", "referral_source", "deadline_days"},
}


@pytest.fixture(scope="module")
def voices() -> list[tuple[dict, demo.Answer]]:
    return list(demo.generate_with_answers(weeks=WEEKS, per_week=PER_WEEK, seed=SEED, end_week=END_WEEK))


@pytest.fixture(scope="module")
def rows(voices) -> list[dict]:
    return [row for row, _ in voices]


@pytest.fixture(scope="module")
def answers(voices) -> dict[str, demo.Answer]:
    return {answer.id: answer for _, answer in voices}


def _week_of(row: dict) -> str:
    return row["id"].split("-")[1]


def _content(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k != "id"}, ensure_ascii=False, sort_keys=True)


def test_same_arguments_give_identical_rows(rows):
    again = list(demo.generate(weeks=WEEKS, per_week=PER_WEEK, seed=SEED, end_week=END_WEEK))
    assert again == rows


def test_answers_pair_each_row_in_order(voices):
    assert all(answer.id == row["id"] for row, answer in voices)
    assert all(answer.scenario in demo.ALL_TOPICS and answer.style in demo.STYLES for _, answer in voices)
    assert all(answer.kind == demo.ALL_TOPICS[answer.scenario].kind for _, answer in voices)


def test_voices_carry_only_what_a_real_export_carries(rows):
    for row in rows:
        assert not {"scenario", "kind", "style", "pii", "repeat_of", "duplicate_of"} & row["metadata"].keys()
        assert row["metadata"].keys() <= CHANNEL_FIELDS[Channel(row["channel"])], row


def test_different_seed_gives_different_rows(rows):
    other = list(demo.generate(weeks=WEEKS, per_week=PER_WEEK, seed=SEED + 1, end_week=END_WEEK))
    assert [r["text"] for r in other] != [r["text"] for r in rows]


def test_row_count_includes_repeats_and_duplicates(rows):
    split = demo.rows_per_week(PER_WEEK)
    assert sum(split.values()) == PER_WEEK
    assert len(rows) == WEEKS * PER_WEEK
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(re.fullmatch(r"DEMO-\d{4}W\d{2}-\d{6}", r["id"]) for r in rows)


def test_exact_duplicates_differ_only_in_id(rows, answers):
    seen: set[str] = set()
    duplicates = 0
    for row in rows:
        content = _content(row)
        duplicates += content in seen
        seen.add(content)
    assert duplicates == WEEKS * demo.rows_per_week(PER_WEEK)["exact_duplicates"]
    by_id = {r["id"]: r for r in rows}
    copies = [r for r in rows if answers[r["id"]].duplicate_of]
    assert len(copies) == duplicates
    assert all(_content(r) == _content(by_id[answers[r["id"]].duplicate_of]) for r in copies)


def test_repeat_contacts_point_to_the_same_customer_one_to_two_days_earlier(rows, answers):
    by_id = {r["id"]: r for r in rows}
    repeats = [r for r in rows if answers[r["id"]].repeat_of]
    assert len(repeats) == WEEKS * demo.rows_per_week(PER_WEEK)["repeats"]
    for repeat in repeats:
        origin = by_id[answers[repeat["id"]].repeat_of]
        assert answers[origin["id"]].scenario == answers[repeat["id"]].scenario
        gap = datetime.fromisoformat(repeat["created_at"]) - datetime.fromisoformat(origin["created_at"])
        assert repeat["customer_id"] == origin["customer_id"]
        assert timedelta(hours=1) <= gap <= timedelta(hours=48)
        assert origin["text"].rstrip("。！？") in repeat["text"] or repeat["text"].rstrip("。") in origin["text"]


def test_every_row_is_a_valid_voice_inside_its_week(rows):
    first_monday = parse_week(END_WEEK).start - timedelta(weeks=WEEKS - 1)
    for row in rows:
        voice = Voice.model_validate(row)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["created_at"])
        monday = parse_week(_week_of(row)).start
        assert monday <= voice.local_time.date() < monday + timedelta(days=7)
        assert first_monday <= monday
        json.dumps(row, ensure_ascii=False)


def test_all_channels_every_week(rows):
    channels_by_week: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        channels_by_week[_week_of(row)].add(row["channel"])
    assert len(channels_by_week) == WEEKS
    assert all(channels == {c.value for c in demo.CHANNEL_SHARES} for channels in channels_by_week.values())


@pytest.mark.parametrize("per_week", [10, 11, 37])
def test_small_weeks_still_have_every_channel_and_the_exact_count(per_week):
    small = list(demo.generate(weeks=2, per_week=per_week, seed=3, end_week=END_WEEK))
    assert len(small) == 2 * per_week
    for week in {_week_of(r) for r in small}:
        assert {r["channel"] for r in small if _week_of(r) == week} == {c.value for c in demo.CHANNEL_SHARES}


def test_funnel_narrows_from_robot_to_regulator(rows):
    by_channel = Counter(r["channel"] for r in rows)
    by_tier = Counter(funnel_tier(Channel(r["channel"])) for r in rows)
    tiers = [by_tier[t] for t in FunnelTier]
    assert tiers == sorted(tiers, reverse=True) and len(set(tiers)) == len(tiers)
    funnel = [Channel.ROBOT, Channel.PHONE, Channel.ONLINE, Channel.APP_FEEDBACK, Channel.STAFF]
    funnel += [Channel.COMPLAINT, Channel.REGULATOR]
    counts = [by_channel[c.value] for c in funnel]
    assert counts == sorted(counts, reverse=True)


def test_mix_of_problems_consultations_praise_and_one_offs(rows, answers):
    kinds = Counter(answers[r["id"]].kind for r in rows)
    shares = {k: kinds[k] / len(rows) for k in demo.KINDS}
    assert 0.50 <= shares[demo.RECURRING] <= 0.65
    assert 0.18 <= shares[demo.CONSULT] <= 0.30
    assert 0.06 <= shares[demo.PRAISE] <= 0.14
    assert 0.06 <= shares[demo.ONEOFF] <= 0.14


@pytest.mark.parametrize("scenario", sorted(demo.SPIKES))
def test_last_week_spikes(rows, answers, scenario):
    counts = Counter(_week_of(r) for r in rows if answers[r["id"]].scenario == scenario)
    weeks = sorted(counts)
    previous_mean = sum(counts[w] for w in weeks[:-1]) / (WEEKS - 1)
    assert counts[weeks[-1]] >= 2 * previous_mean


def test_other_scenarios_do_not_spike(rows, answers):
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts[answers[row["id"]].scenario][_week_of(row)] += 1
    last = max(_week_of(r) for r in rows)
    for topic in demo.SCENARIOS:
        if topic.key not in demo.SPIKES:
            weekly = counts[topic.key]
            previous_mean = (sum(weekly.values()) - weekly[last]) / (WEEKS - 1)
            assert weekly[last] < 2 * previous_mean + 5, topic.key


def test_scenarios_cover_five_dimensions_with_many_phrasings():
    assert {t.dimension for t in demo.SCENARIOS} == set("人机物法环")
    assert len({t.owner for t in demo.SCENARIOS}) >= 8
    assert len({t.business for t in demo.SCENARIOS}) >= 8
    assert all(len(t.phrasings) >= 6 and t.owner for t in demo.SCENARIOS)
    assert set(demo.SPIKES) <= {t.key for t in demo.SCENARIOS}


def test_personal_data_in_a_realistic_share(rows, answers):
    texts = [r["text"] for r in rows]
    with_pii = [r for r in rows if answers[r["id"]].pii]
    assert 0.05 <= len(with_pii) / len(rows) <= 0.12
    ids = [m for t in texts for m in ID_CARD.findall(t)]
    cards = [m.replace(" ", "") for t in texts for m in CARD.findall(t)]
    assert any(MOBILE.search(t) for t in texts)
    assert ids and all(is_id_number(i) and id_check_char(i[:17]) == i[17] for i in ids)
    assert cards and all(luhn_valid(c) for c in cards)
    assert any("@" in t and ".com" in t for t in texts)
    assert any(re.search(r"我叫|[张王李赵陈刘杨黄周吴徐孙马朱胡郭何林高罗](先生|女士)", t) for t in texts)


def test_the_answers_name_the_personal_data_in_the_text(rows, answers):
    found = {"mobile": MOBILE, "id_card": ID_CARD, "bank_card": CARD, "email": re.compile(r"@\w+\.com")}
    for row in rows:
        kind = answers[row["id"]].pii
        if kind in found:
            assert found[kind].search(row["text"]), row
    assert {answers[r["id"]].pii for r in rows} == {None, *found, "name"}


def test_styles_and_segments_vary(rows, answers):
    used = Counter(answers[r["id"]].style for r in rows)
    assert set(used) == set(demo.STYLES)
    segments = Counter(r["customer_segment"] for r in rows)
    assert 0.06 <= segments["老年客户"] / len(rows) <= 0.16
    assert 0.03 <= segments["对公"] / len(rows) <= 0.10
    assert segments["私人银行"] and segments["未知"]
    social = [r for r in rows if r["channel"] == Channel.SOCIAL.value]
    assert all(r["customer_id"] is None and "platform" in r["metadata"] for r in social)
    assert all("12378" in r["text"] for r in rows if r["channel"] == Channel.REGULATOR.value)
    assert len({r["text"] for r in rows}) > 0.7 * len(rows)


def test_bank_csv_round_trips_in_gb18030(rows, tmp_path):
    path = tmp_path / "export.csv"
    assert demo.write_csv(rows, path, encoding="gb18030", bank_headers=True) == len(rows)
    with path.open(encoding="gb18030", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == ["工单编号", "受理时间", "受理渠道", "来源类型", "客户号", "客群", "业务类型", "客户诉求"]
    assert [r["客户诉求"] for r in read] == [r["text"] for r in rows]
    assert [r["客户号"] or None for r in read] == [r["customer_id"] for r in rows]
    assert datetime.fromisoformat(read[0]["受理时间"]) == datetime.fromisoformat(rows[0]["created_at"])


def test_plain_csv_and_jsonl_round_trip(rows, tmp_path):
    assert demo.write_jsonl(rows, tmp_path / "out" / "rows.jsonl") == len(rows)
    lines = (tmp_path / "out" / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert demo.write_csv(rows[:50], tmp_path / "rows.csv") == 50
    with (tmp_path / "rows.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [json.loads(r["metadata"]) for r in read] == [r["metadata"] for r in rows[:50]]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 23), "2026-W47"),
        (date(2026, 11, 22), "2026-W46"),
        (date(2027, 1, 4), "2026-W53"),
        (date(2026, 1, 1), "2025-W52"),
    ],
)
def test_last_complete_iso_week(today, expected):
    assert demo.last_complete_iso_week(today) == expected


def test_default_end_week_is_the_last_complete_week():
    first = next(demo.generate(weeks=1, per_week=20))
    assert _week_of(first) == demo.last_complete_iso_week().replace("-", "")


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        demo.generate(weeks=0)
    with pytest.raises(ValueError):
        demo.generate(per_week=5)
    with pytest.raises(ValueError):
        demo.generate(end_week="2026-47")


def test_generated_id_and_card_numbers_carry_valid_check_characters():
    assert id_check_char("11010519491231002") == "X"
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    rng = random.Random(5)
    ids = [people.id_number(rng) for _ in range(300)]
    assert all(is_id_number(i) and id_check_char(i[:17]) == i[17] for i in ids)
    assert "X" in {i[-1] for i in ids}  # the check character that is not a digit turns up too
    cards = [people.card_number(rng).replace(" ", "") for _ in range(300)]
    assert all(luhn_valid(c) and len(c) in (16, 19) for c in cards)


def test_demo_data_writes_the_answers_beside_the_voices(voices, tmp_path):
    path = tmp_path / "out" / "voices.jsonl"
    assert demo.write_with_answers(voices[:300], path) == 300
    assert demo.answers_path(path) == tmp_path / "out" / "answers" / "voices.jsonl"
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [r for r, _ in voices[:300]]
    assert demo.read_answers(path) == {a.id: a for _, a in voices[:300]}
    assert demo.read_answers(demo.answers_path(path)) == demo.read_answers(path)


def test_every_slot_and_template_field_is_known():
    phrasings = [p for topic in demo.ALL_TOPICS.values() for p in topic.phrasings]
    assert {name for p in phrasings for name in _names(p)} <= set(styles.SLOTS)
    words = styles.WORDS
    templates = {
        "ticket": words.ticket.negative + words.ticket.consult + words.ticket.praise + words.regulator,
        "social": words.social.templates + words.social.praise_templates,
        "staff": words.staff.front + words.staff.back + words.staff.consult,
    }
    fields = {
        "ticket": {"third", "gist", "demand", "ref"},
        "social": {"tag", "text", "rant", "bank"},
        "staff": {"gist", "third", "phrasing", "suggestion", "role", *styles.SLOTS},
    }
    for style, texts in templates.items():
        assert all(_names(t) <= fields[style] for t in texts), style


def test_a_mistake_in_the_yaml_names_the_file_and_the_entry(tmp_path, monkeypatch):
    (tmp_path / "scenarios.yaml").write_text("atm_card_swallowed:\n  gist: ATM吞卡\n  business: 银行卡\n"
                                             "  phrasings: [取款机吞卡]\n", encoding="utf-8")
    monkeypatch.setattr(data, "HERE", tmp_path)
    with pytest.raises(ValueError, match=r"scenarios.yaml: atm_card_swallowed(.|\n)*business"):
        data.load_each("scenarios.yaml", Topic, kind=demo.RECURRING)


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
