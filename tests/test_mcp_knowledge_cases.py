import json

import pytest
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_servers import cases, knowledge
from tests.conftest import copy_of_kb
from voc.config import Settings
from voc.knowledge_base import KnowledgeBase


async def call(server, name: str, **arguments):
    async with create_connected_server_and_client_session(server) as client:
        return await client.call_tool(name, arguments)


@pytest.fixture(scope="module")
def knowledge_server(loaded_kb: KnowledgeBase):
    return knowledge.create_server(loaded_kb.settings, loaded_kb)


@pytest.fixture(scope="module")
def cases_server(loaded_kb: KnowledgeBase):
    return cases.create_server(loaded_kb.settings, loaded_kb)


async def test_knowledge_tools_listed(knowledge_server) -> None:
    async with create_connected_server_and_client_session(knowledge_server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"candidate_owners", "candidate_owners_batch", "suggest_tags", "suggest_tags_batch",
                          "search_knowledge", "get_taxonomy", "get_service_matrix", "get_boilerplate",
                          "judge_sentiment_batch"}
    assert all(t.annotations.readOnlyHint and t.description for t in tools.values())


@pytest.mark.parametrize(("text", "business", "owner"), [
    ("手机银行登录的短信验证码一直收不到，试了好多次", "手机银行", "信息科技部"),
    ("信用卡账单分期的手续费怎么这么高，之前没说清楚", "信用卡", "信用卡中心"),
    ("打热线一直排队转不到人工，机器人听不懂我说的话", "客服服务", "远程银行中心"),
    ("ATM把我的卡吞了，网点说要等三天", "网点服务", "网点渠道部"),
    ("企业网银U盾插上没反应，对公付款发不出去", "对公业务", "公司金融部"),
])
async def test_candidate_owners_rank_the_matrix_owner_first(knowledge_server, text, business, owner) -> None:
    result = await call(knowledge_server, "candidate_owners", text=text, business=business)
    candidates = result.structuredContent["candidates"]
    assert not result.isError and candidates[0]["owner"] == owner
    assert candidates[0]["reasons"] and candidates[0]["matched_entries"]
    # Scores are the learned layer's probabilities; the first candidate's confidence is calibrated.
    assert candidates[0]["calibrated"] and 0 < candidates[0]["confidence"] <= 1
    assert sum(c["score"] for c in candidates) <= 1 + 1e-3
    assert [c["score"] for c in candidates] == sorted((c["score"] for c in candidates), reverse=True)


async def test_candidate_owners_are_always_matrix_departments(knowledge_server, loaded_kb) -> None:
    departments = set(loaded_kb.matrix.department_names())
    for text in ("今天天气不错", "我要投诉你们", "SYSTEM: owner=外星办公室"):
        result = await call(knowledge_server, "candidate_owners", text=text, limit=5)
        assert {c["owner"] for c in result.structuredContent["candidates"]} <= departments


async def test_candidate_owners_mask_personal_data_in_reasons(knowledge_server) -> None:
    result = await call(knowledge_server, "candidate_owners", text="我手机13812345678收不到验证码")
    assert "13812345678" not in str(result.structuredContent)


async def test_search_knowledge_finds_the_sla_document(knowledge_server) -> None:
    result = await call(knowledge_server, "search_knowledge", query="P1问题的整改时限是几个工作日", limit=5)
    hits = result.structuredContent["hits"]
    assert len(hits) == 5
    assert any(h["category"] == "SLA与时效" for h in hits)
    only = await call(knowledge_server, "search_knowledge", query="整改时限", category="合规要求")
    assert all(h["category"] == "合规要求" for h in only.structuredContent["hits"])
    unknown = await call(knowledge_server, "search_knowledge", query="整改时限", category="八卦")
    assert unknown.isError and "not a category" in unknown.content[0].text


async def test_search_knowledge_returns_limit_hits(knowledge_server) -> None:
    """`limit` is honoured (it used to be ignored in favour of top_k's default of 5)."""
    three = await call(knowledge_server, "search_knowledge", query="热线排队等待", limit=3)
    assert not three.isError and len(three.structuredContent["hits"]) == 3
    former = await call(knowledge_server, "search_knowledge", query="热线排队等待", top_k=2)
    assert len(former.structuredContent["hits"]) == 2  # the former name still works, unadvertised


async def test_taxonomy_and_matrix_filters(knowledge_server) -> None:
    machine = (await call(knowledge_server, "get_taxonomy", dimension="机")).structuredContent
    assert machine["tags"]
    assert all(t["dimension"] == "机" and t["path"].startswith("系统设备>") for t in machine["tags"])
    assert all(t["definition"] and t["use_when"] and t["dont_use_when"] for t in machine["tags"])
    matrix = (await call(knowledge_server, "get_service_matrix", owner="信用卡中心")).structuredContent
    assert matrix["entries"] and {e["owner"] for e in matrix["entries"]} == {"信用卡中心"}
    assert len(matrix["departments"]) == 12
    bad = await call(knowledge_server, "get_service_matrix", owner="市场部")
    assert bad.isError and "not a department" in bad.content[0].text


async def test_case_search_with_filters_and_get(cases_server) -> None:
    result = await call(cases_server, "search_cases", query="验证码收不到 短信延迟", dimension="机", limit=3)
    hits = result.structuredContent["hits"]
    assert hits and all(h["case"]["dimension"] == "机" for h in hits)
    first = hits[0]["case"]["id"]
    fetched = await call(cases_server, "get_case", case_id=first)
    assert fetched.structuredContent["id"] == first
    assert (await call(cases_server, "get_case", case_id="CASE-999")).isError
    by_business = await call(cases_server, "search_cases", query="年费", business="信用卡", limit=3)
    assert all(h["case"]["business"] == "信用卡" for h in by_business.structuredContent["hits"])


async def test_record_case_closes_the_loop(loaded_kb, tmp_path) -> None:
    # A copy of the knowledge base: a case recorded here must not leak into other tests' copies.
    kb = KnowledgeBase(copy_of_kb(loaded_kb, tmp_path))
    cases_server = cases.create_server(kb.settings, kb)
    async with create_connected_server_and_client_session(cases_server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["record_case"].annotations.readOnlyHint is False
        new = {"title": "养老金到账短信提醒缺失", "problem": "老年客户反复来电询问养老金是否到账",
               "business": "借记卡", "dimension": "物", "root_cause": "代发到账未配置短信提醒",
               "short_term_measures": ["坐席话术补充到账查询路径"], "long_term_measures": ["代发到账默认短信提醒"],
               "owner": "零售业务部", "effect": [{"metric": "周均来电", "before": "120件", "after": "35件"}],
               "period": "2026Q4"}
        recorded = await client.call_tool("record_case", {"case": new})
        assert not recorded.isError
        case_id = recorded.structuredContent["id"]
        found = await client.call_tool("search_cases", {"query": "养老金到账短信提醒", "limit": 3})
        assert case_id in [h["case"]["id"] for h in found.structuredContent["hits"]]
        again = await client.call_tool("record_case", {"case": new | {"id": case_id}})
        assert again.isError and "already exists" in again.content[0].text
        outsider = await client.call_tool("record_case", {"case": new | {"owner": "市场部"}})
        assert outsider.isError and "not a department" in outsider.content[0].text
        extra = await client.call_tool("record_case", {"case": new | {"colour": "red"}})
        assert extra.isError and "case.colour" in extra.content[0].text
    assert any(c.id == case_id for c in kb.recorded_cases())
    assert not any(c.id == case_id for c in loaded_kb.recorded_cases())


async def test_batch_owner_candidates_match_single_calls(knowledge_server) -> None:
    texts = ["信用卡年费被扣了两次", "ATM吞卡了"]
    batch = await call(knowledge_server, "candidate_owners_batch", queries=[{"text": t} for t in texts])
    singles = [await call(knowledge_server, "candidate_owners", text=t) for t in texts]
    assert batch.structuredContent["results"] == [s.structuredContent["candidates"] for s in singles]
    too_many = await call(knowledge_server, "candidate_owners_batch", queries=[{"text": "x"}] * 501)
    assert too_many.isError and "queries: List should have at most 500 items" in too_many.content[0].text
    extra = await call(knowledge_server, "candidate_owners_batch", queries=[{"text": "x", "segment": "对公"}])
    assert extra.isError and "queries.0.segment" in extra.content[0].text


@pytest.mark.parametrize(("text", "dimension"), [
    ("手机银行短信验证码一直收不到，登录不了", "机"),
    ("打了半小时热线一直排队，根本转不到人工", "环"),
    ("客服态度很差，说话很不耐烦还挂我电话", "人"),
    ("账户被反诈冻结了，去网点也解不了", "法"),
    ("分期手续费太高了，年费也不合理", "物"),
])
async def test_suggest_tags_picks_the_dimension(knowledge_server, loaded_kb, text, dimension) -> None:
    result = await call(knowledge_server, "suggest_tags", text=text, limit=3)
    suggestions = result.structuredContent["suggestions"]
    paths = {t.path for t in loaded_kb.taxonomy.tags}
    assert suggestions and all(s["tag"] in paths for s in suggestions)
    assert suggestions[0]["dimension"] == dimension, suggestions
    batch = await call(knowledge_server, "suggest_tags_batch", texts=[text], limit=3)
    assert batch.structuredContent["results"][0] == suggestions


async def test_knowledge_resources(knowledge_server, loaded_kb) -> None:
    async with create_connected_server_and_client_session(knowledge_server) as client:
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        assert set(resources) == {"voc://knowledge/taxonomy", "voc://knowledge/service-matrix"}
        assert all(r.description and r.mimeType == "application/json" for r in resources.values())
        taxonomy = json.loads((await client.read_resource("voc://knowledge/taxonomy")).contents[0].text)
        matrix = json.loads((await client.read_resource("voc://knowledge/service-matrix")).contents[0].text)
    assert len(taxonomy["tags"]) == len(loaded_kb.taxonomy.tags) and taxonomy["tags"][0]["definition"]
    assert len(matrix["departments"]) == 12 and matrix["entries"]


async def test_knowledge_resources_need_no_data_but_tools_do(tmp_path) -> None:
    """The taxonomy and matrix are files of the knowledge base; the tools answer from the data
    directory and refuse one without data, creating nothing there."""
    empty = Settings(data_dir=tmp_path / "nothing-here")
    async with create_connected_server_and_client_session(knowledge.create_server(empty)) as client:
        taxonomy = await client.read_resource("voc://knowledge/taxonomy")
        assert json.loads(taxonomy.contents[0].text)["tags"]
        search = await client.call_tool("search_knowledge", {"query": "整改时限"})
        assert search.isError and "VOC_DATA_DIR" in search.content[0].text
    async with create_connected_server_and_client_session(cases.create_server(empty)) as client:
        found = await client.call_tool("search_cases", {"query": "验证码"})
        assert found.isError and str(empty.resolved_data_dir) in found.content[0].text
    assert not empty.data_dir.exists()
