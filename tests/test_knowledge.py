from datetime import date
from pathlib import Path

import pytest
import yaml

from voc.config import REPO_ROOT, Settings
from voc.contracts import Dimension
from voc.kb_models import TagDefinition
from voc.knowledge import (
    KnowledgeError,
    add_tag,
    check_taxonomy,
    chunk_doc,
    find_tag,
    load_service_matrix,
    load_taxonomy,
    merge_tags,
    rename_tag,
    save_taxonomy,
)
from voc.knowledge_base import KnowledgeBase
from voc.models import Business
from voc.vectorstore import Item, client_for, collection, sync

DEPARTMENTS = {"信用卡中心", "零售业务部", "网络金融部", "财富管理部", "个人信贷部", "运营管理部", "远程银行中心",
               "信息科技部", "风险合规部", "消费者权益保护部", "公司金融部", "网点渠道部"}


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=tmp_path_factory.mktemp("files")))


def test_default_profile_has_exactly_the_twelve_departments(kb) -> None:
    assert set(kb.matrix.department_names()) == DEPARTMENTS and len(kb.matrix.departments) == 12
    owners = [e.owner for e in kb.matrix.entries]
    assert set(owners) == DEPARTMENTS
    assert {b for e in kb.matrix.entries for b in e.business} >= {b for b in Business}


def test_taxonomy_covers_five_dimensions_with_dictionary(kb) -> None:
    taxonomy = kb.taxonomy
    assert {d.code for d in taxonomy.dimensions} == set(Dimension)
    for dimension in Dimension:
        tags = [t for t in taxonomy.tags if t.dimension == dimension]
        assert len({t.levels[1] for t in tags}) >= 3, dimension
    assert all(t.definition and t.use_when and t.dont_use_when and len(t.examples) >= 2 for t in taxonomy.tags)
    assert taxonomy.changelog


def test_case_library_and_documents(kb) -> None:
    kb.check()
    cases = kb.cases()
    assert len(cases) >= 40 and len(kb.docs) >= 30
    assert {c.dimension for c in cases} == set(Dimension)
    assert {c.owner for c in cases} == DEPARTMENTS
    paths = {t.path for t in kb.taxonomy.tags}
    assert all(c.tag in paths for c in cases if c.tag)
    assert any(d.category == "SLA与时效" for d in kb.docs)


def test_documents_chunk_by_section(kb) -> None:
    chunks = chunk_doc(kb.docs[0])
    assert len(chunks) >= 2 and all(c.text for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_matrix_from_csv_and_unknown_owner(tmp_path: Path) -> None:
    path = tmp_path / "matrix.csv"
    path.write_text("id,channels,business,scene,keywords,owner,role\n"
                    "M1,*,信用卡,年费,年费|扣费,卡部,产品经理\nM2,电话客服|在线客服,*,排队,排队|等待,客服部,坐席管理\n",
                    encoding="gbk")
    matrix = load_service_matrix(path)
    assert matrix.department_names() == ["卡部", "客服部"]
    assert matrix.entries[1].channels == ["电话客服", "在线客服"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"version": "1", "departments": [{"name": "甲", "scope": "x"}],
                                   "entries": [{"id": "E1", "scene": "s", "keywords": ["k"], "owner": "乙",
                                                "role": "r"}]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not departments"):
        load_service_matrix(bad)


def test_tags_can_be_added_renamed_and_merged(kb, tmp_path: Path) -> None:
    taxonomy = kb.taxonomy
    first, second = [t for t in taxonomy.tags if t.dimension == "机"][:2]
    new = TagDefinition(path="系统设备>测试组>新标签", dimension="机", definition="d", use_when="u",
                        dont_use_when="n", examples=["甲", "乙"])
    added = add_tag(taxonomy, new, date(2026, 11, 20))
    assert added.version != taxonomy.version and "新增标签" in added.changelog[-1].changes[0]
    renamed = rename_tag(added, new.path, "系统设备>测试组>改名标签", date(2026, 11, 21))
    assert find_tag(renamed, new.path).path == "系统设备>测试组>改名标签"
    merged = merge_tags(renamed, [first.path], second.path, date(2026, 11, 22))
    assert first.path not in {t.path for t in merged.tags}
    assert find_tag(merged, first.path).path == second.path
    assert set(first.examples) <= set(find_tag(merged, second.path).examples)
    with pytest.raises(KnowledgeError, match="L1"):
        add_tag(taxonomy, new.model_copy(update={"path": "人员服务>错层>标签"}))
    with pytest.raises(KnowledgeError, match="already exists"):
        add_tag(added, new)
    target = tmp_path / "taxonomy.yaml"
    save_taxonomy(merged, target)
    assert load_taxonomy(target) == merged


def test_sync_is_incremental_and_idempotent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    coll = collection(client_for(settings), "sync_test")
    items = [Item("a", "信用卡年费", {"k": 1}), Item("b", "热线排队", {"k": 2})]
    first = sync(coll, items)
    assert (first.added, first.updated, first.deleted) == (2, 0, 0)
    again = sync(coll, items)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    changed = sync(coll, [Item("a", "信用卡年费争议", {"k": 1}), Item("c", "ATM吞卡", {"k": 3})])
    assert (changed.added, changed.updated, changed.deleted, changed.unchanged) == (1, 1, 1, 0)
    assert sorted(coll.get()["ids"]) == ["a", "c"]


def test_loaded_knowledge_base_reloads_without_embedding(loaded_kb) -> None:
    reports = loaded_kb.load()
    assert all(r.added == r.updated == r.deleted == 0 for r in reports if r.collection != "kb_cases")
    counts = loaded_kb.counts()
    assert counts["kb_docs"] >= 30 and counts["kb_cases"] >= 40 and counts["kb_matrix"] == len(loaded_kb.matrix.entries)


def test_demo_scenarios_name_matrix_owners_and_taxonomy_dimensions(kb) -> None:
    from voc.demo import SCENARIOS

    assert {s.owner for s in SCENARIOS if s.owner} <= set(kb.matrix.department_names())


# ---------------------------------------------------------------- typical measures and case coverage

HIGH_VOLUME_TAGS = [
    "系统设备>登录认证>验证码收不到", "系统设备>登录认证>密码锁定异常", "系统设备>应用运行>闪退无法打开",
    "系统设备>交易账务>扣款未到账", "系统设备>智能客服>答非所问", "服务环境>人工可达>转人工困难",
    "服务环境>排队等待>热线排队过长", "服务环境>排队等待>在线排队过长", "产品流程>收费定价>手续费偏高",
    "产品流程>产品规则>分期还款规则", "规则合规>披露适当性>费率披露不足", "规则合规>反诈风控>冻结止付",
    "人员服务>催收营销行为>催收用语不当", "人员服务>催收营销行为>催收联系第三方",
]


def test_every_bundled_tag_has_short_typical_measures(kb) -> None:
    for tag in kb.taxonomy.tags:
        for measures in (tag.short_term_measures, tag.long_term_measures):
            assert 2 <= len(measures) <= 3, tag.path
            assert all(m.strip() and len(m) <= 40 for m in measures), (tag.path, measures)
            # No figures: a number in a typical measure would have to come from data it does not have.
            assert not any(ch.isascii() and ch.isdigit() for m in measures for ch in m), (tag.path, measures)
        assert not set(tag.short_term_measures) & set(tag.long_term_measures), tag.path
    assert kb.taxonomy.version == "1.1.0" and kb.taxonomy.changelog[-1].version == "1.1.0"


def test_measures_stay_optional_but_not_blank(kb) -> None:
    bare = TagDefinition(path="系统设备>测试组>旧标签", dimension="机", definition="d", use_when="u",
                         dont_use_when="n", examples=["甲", "乙"])
    assert bare.short_term_measures == [] and bare.long_term_measures == []  # older files still load
    taxonomy = kb.taxonomy
    blank = bare.model_copy(update={"short_term_measures": ["核查短信通道", " "]})
    with pytest.raises(KnowledgeError, match="empty measure"):
        check_taxonomy(taxonomy.model_copy(update={"tags": [*taxonomy.tags, blank]}))
    twice = bare.model_copy(update={"long_term_measures": ["建立监控", "建立监控"]})
    with pytest.raises(KnowledgeError, match="repeats"):
        check_taxonomy(taxonomy.model_copy(update={"tags": [*taxonomy.tags, twice]}))


def test_every_l2_group_and_high_volume_tag_has_a_case(kb) -> None:
    cases = kb.cases()
    tags = {t.path: t for t in kb.taxonomy.tags}
    assert all(tags[c.tag].dimension == c.dimension for c in cases if c.tag), "a case's dimension follows its tag"
    groups = {">".join(t.levels[:2]) for t in tags.values()}
    covered = {">".join(c.tag.split(">")[:2]) for c in cases if c.tag}
    assert groups <= covered, sorted(groups - covered)
    tagged = {c.tag for c in cases}
    assert set(HIGH_VOLUME_TAGS) <= tagged, sorted(set(HIGH_VOLUME_TAGS) - tagged)


# ---------------------------------------------------------------- eval/relevance.yaml

@pytest.fixture(scope="module")
def relevance() -> dict:
    return yaml.safe_load((REPO_ROOT / "eval" / "relevance.yaml").read_text(encoding="utf-8"))


def test_relevance_labels_name_existing_items_and_cover_every_tag(kb, relevance) -> None:
    tags = {t.path for t in kb.taxonomy.tags}
    case_ids = {c.id for c in kb.cases()}
    doc_ids = {d.id for d in kb.docs}
    labels = relevance["tags"]
    assert set(labels) == tags
    neutral = set(relevance["neutral_docs"])
    assert neutral <= doc_ids
    for path, label in labels.items():
        assert set(label["cases"]) <= case_ids and set(label["docs"]) <= doc_ids, path
        assert not set(label["docs"]) & neutral, path
        assert len(set(label["cases"])) == len(label["cases"]) and len(set(label["docs"])) == len(label["docs"])
    for case in kb.cases():
        if case.tag:
            assert case.id in labels[case.tag]["cases"], f"{case.id} is relevant to its own tag {case.tag}"


def test_relevance_negatives_are_real_and_never_positive(relevance, kb) -> None:
    known = {c.id for c in kb.cases()} | {d.id for d in kb.docs}
    labels = relevance["tags"]
    negatives = relevance["negatives"]
    assert len(negatives) >= 150
    pairs = [(n["tag"], n["item"]) for n in negatives]
    assert len(pairs) == len(set(pairs))
    for n in negatives:
        assert n["relevant"] is False and n["why"], n
        assert n["tag"] in labels and n["item"] in known, n
        assert n["item"] not in labels[n["tag"]]["cases"] + labels[n["tag"]]["docs"], n
        assert n["item"] not in relevance["neutral_docs"], n
    assert ("系统设备>应用运行>闪退无法打开", "CASE-019") in pairs  # 企业网银批量文件报错 is no app crash
    assert ("系统设备>登录认证>验证码收不到", "CASE-017") in pairs  # nor is a face scan an SMS code
