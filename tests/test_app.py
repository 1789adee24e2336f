"""The app: chat over SSE with streamed steps and cited ids, REST resources, review queue, guards."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import create_app
from tests.conftest import finish_run, kb_with_voices
from tests.factories import cluster_dict, proposal_dict
from tests.fake_openai import FakeRequest
from tests.test_weekly_run import rows
from voc.config import Settings
from voc.knowledge_base import KnowledgeBase

WEEK = "2026-W47"


def local_client(app: FastAPI) -> TestClient:
    """A test client that looks like a browser on this machine (loopback client, server and Host): the
    app refuses /api off loopback without a token, and Host names it does not know."""
    return TestClient(app, base_url="http://127.0.0.1:8080", client=("127.0.0.1", 50000))


@pytest.fixture(scope="module")
def settings(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A strict review threshold: the calibrated owner confidence routes most demo voices with
    # certainty, and the review-queue tests need pages of flagged voices to walk through.
    return kb_with_voices(loaded_kb, tmp_path_factory.mktemp("app"), rows()).model_copy(
        update={"review_threshold": 0.97})


@pytest.fixture(scope="module")
def client(settings: Settings):
    with local_client(create_app(settings)) as client:
        client.run_id = finish_run(client, WEEK)["run_id"]  # type: ignore[attr-defined]
        yield client


def events(client: TestClient, message: str, session_id: str | None = None, engine: str = "offline") -> list[dict]:
    body = {"message": message, "engine": engine} | ({"session_id": session_id} if session_id else {})
    with client.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    return [json.loads(line.removeprefix("data: ")) for line in lines]


def answer_of(stream: list[dict]) -> dict:
    return next(e for e in stream if e["type"] == "answer")


def test_run_progress_and_outputs(client: TestClient) -> None:
    job = client.get(f"/api/runs/{client.run_id}").json()
    assert set(job["progress"]) >= {"归因", "溯源", "分析", "应用"} and job["summary"]["counts"]["voices"] > 0
    clusters = client.get(f"/api/runs/{client.run_id}/clusters").json()
    assert clusters and {"cluster_id", "priority", "rising"} <= set(clusters[0])
    assert client.get(f"/api/runs/{client.run_id}/nothing").status_code == 422
    assert client.get("/api/runs/unknown-run").json() == {"error": "no run 'unknown-run'"}


def test_chat_streams_steps_then_an_answer_with_evidence(client: TestClient) -> None:
    stream = events(client, "本周哪些问题在上升？为什么？")
    kinds = [e["type"] for e in stream]
    assert kinds[0] == "session" and kinds[-1] == "done"
    assert kinds.index("tool") < kinds.index("answer")
    tools = {(e["server"], e["tool"]) for e in stream if e["type"] == "tool"}
    assert ("proposals", "list_problems") in tools
    answer = answer_of(stream)
    clusters = client.get(f"/api/runs/{client.run_id}/clusters").json()
    rising = [c for c in clusters if c["rising"]]
    assert rising and rising[0]["label"] in answer["text"] and "为什么" in answer["text"]
    assert set(answer["voice_ids"]) <= {v for c in clusters for v in c["voice_ids"]}
    assert answer["voice_ids"] and all(v in answer["text"] for v in answer["voice_ids"])


def test_chat_answers_each_supported_question_type(client: TestClient) -> None:
    proposals = client.get("/api/proposals").json()
    owner = proposals[0]["owner_department"]
    pending = answer_of(events(client, f"{owner}本周有哪些待处理建议？"))
    assert proposals[0]["proposal_id"] in pending["text"] and pending["proposal_ids"]
    quotes = answer_of(events(client, "给我看手机银行验证码问题的客户原话"))
    assert quotes["voice_ids"] and "验证码" in quotes["text"] and "13812345678" not in quotes["text"]
    elderly = answer_of(events(client, "和上周相比，老年客户投诉有什么变化？"))
    assert elderly["text"].startswith("老年客户：本期声音")
    effect = answer_of(events(client, "上个月的验证码整改有效果吗？"))
    assert "尚未完成整改" in effect["text"] and effect["proposal_ids"]
    unsupported = answer_of(events(client, "帮我写一首诗"))
    assert "离线模式下无法回答" in unsupported["text"] and "待处理的整改建议" in unsupported["text"]


def test_a_session_keeps_its_context(client: TestClient) -> None:
    first = events(client, "信用卡中心有哪些待处理建议？")
    session = first[0]["session_id"]
    follow = events(client, "那信息科技部呢？", session)
    understood = next(e for e in follow if e["type"] == "step" and e["name"] == "理解问题")
    detail = understood["detail"]
    assert detail["intent"] == "owner_proposals" and detail["slots"]["owner"] == "信息科技部"
    history = client.get(f"/api/chat/{session}").json()
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]


def test_proposals_filter_and_lifecycle(client: TestClient) -> None:
    proposal = client.get("/api/proposals").json()[0]
    pid, owner = proposal["proposal_id"], proposal["owner_department"]
    assert all(p["owner_department"] == owner for p in client.get("/api/proposals", params={"owner": owner}).json())
    moved = client.patch(f"/api/proposals/{pid}", json={"status": "整改中", "actor": "张三", "note": "认领"})
    assert moved.status_code == 200 and moved.json()["status"] == "整改中"
    assert pid in [p["proposal_id"] for p in client.get("/api/proposals", params={"status": "整改中"}).json()]
    refused = client.patch(f"/api/proposals/{pid}", json={"status": "已验证", "actor": "张三"})
    assert refused.status_code == 409 and "verify" in refused.json()["error"]
    assert client.get("/api/proposals/PR-none").status_code == 404
    bad = client.patch(f"/api/proposals/{pid}", json={"status": "完成了"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid request"


def test_review_queue_corrections_override_later_runs(client: TestClient, settings: Settings) -> None:
    queue = client.get("/api/reviews", params={"week": WEEK, "include": ["inject-1"]}).json()
    assert queue["items"] and any(i["voice_id"] == "inject-1" for i in queue["items"])
    voice = "inject-1"
    wrong = client.post(f"/api/reviews/{voice}", json={"owner_department": "市场部", "actor": "李四"})
    assert wrong.status_code == 422 and "service matrix" in wrong.json()["error"]
    fixed = client.post(f"/api/reviews/{voice}", json={"owner_department": "信息科技部", "sentiment": "负面",
                                                        "actor": "李四", "note": "验证码问题"})
    assert fixed.status_code == 201 and fixed.json()["actor"] == "李四"
    rerun = client.post("/api/runs", json={"week": WEEK}).json()["run_id"]
    while client.get(f"/api/runs/{rerun}").json()["status"] in ("queued", "running"):
        time.sleep(0.5)
    voices = {v["id"]: v for v in client.get(f"/api/runs/{rerun}/voices").json()}
    assert voices[voice]["owner_department"] == "信息科技部" and voices[voice]["needs_review"] is False
    assert voices[voice]["sentiment"] == "负面"


def test_reports_voices_and_knowledge(client: TestClient) -> None:
    made = client.post("/api/reports", json={"week": WEEK, "formats": ["md"]})
    assert made.status_code == 201
    markdown = client.get(made.json()["files"]["md"])
    assert markdown.status_code == 200 and "客户心声" in markdown.text
    assert client.get("/api/reports").json()[0]["week"] == WEEK
    assert client.get(f"/api/dashboard/{WEEK}/charts/matrix.png").content[:4] == b"\x89PNG"
    assert client.post("/api/reports", json={"week": "2026-W01"}).status_code == 409
    page = client.get("/api/voices", params={"week": WEEK, "query": "验证码", "limit": 2}).json()
    assert page["total"] >= 2 and len(page["items"]) == 2 and page["next_cursor"]
    assert client.get("/api/voices", params={"week": "W99"}).status_code == 422
    assert len(client.get("/api/taxonomy").json()["tags"]) >= 80
    assert len(client.get("/api/service-matrix").json()["departments"]) == 12
    assert "/api/chat" in client.get("/openapi.json").json()["paths"]


def test_page_is_served_without_outside_assets(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "客户声音 VOC 工作台" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/static/app.js").status_code == 200


def test_guards_size_and_token(settings: Settings, client: TestClient) -> None:
    huge = client.post("/api/chat", content=b"x" * 70_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert client.post("/api/chat", json={"message": ""}).status_code == 422
    guarded = create_app(settings.model_copy(update={"api_token": "s3cret"}))
    with local_client(guarded) as locked:
        assert locked.get("/api/proposals").status_code == 401
        assert locked.get("/api/proposals", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_serve_refuses_to_bind_beyond_loopback_without_a_token(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from voc.cli import app as cli
    from voc.config import get_settings

    monkeypatch.setenv("VOC_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "VOC_API_TOKEN" in result.output


def chat_model(request: FakeRequest) -> dict:
    """A scripted tool-calling model: first it asks for the week's rising problems, then it answers
    from the tool result, citing one real voice id and one it made up."""
    last = request.body["messages"][-1]
    if last["role"] == "user":
        arguments = json.dumps({"week": WEEK, "rising_only": True})
        return {"tool_calls": [{"name": "proposals__list_problems", "arguments": arguments}]}
    problems = json.loads(last["content"])["items"]
    first = problems[0]
    return {"text": f"{first['label']}在上升：本周{first['current_count']}条。",
            "voice_ids": [first["representative_voice_ids"][0], "invented-1"], "proposal_ids": []}


def test_llm_engine_chat_calls_read_only_tools_and_cites_only_what_they_returned(client: TestClient, fake_llm,
                                                                                 settings: Settings) -> None:
    fake_llm.responder = chat_model
    llm_settings = settings.model_copy(update={"llm_base_url": fake_llm.base_url, "llm_model": "scripted",
                                               "llm_max_retries": 0})
    with local_client(create_app(llm_settings)) as llm_client:
        stream = events(llm_client, "本周哪些问题在上升？", engine="llm")
        answer = answer_of(stream)
        assert answer["engine"] == "llm" and "在上升" in answer["text"]
        assert "invented-1" not in answer["voice_ids"] and len(answer["voice_ids"]) == 1
        assert ("proposals", "list_problems") in {(e["server"], e["tool"]) for e in stream if e["type"] == "tool"}
        offered = {t["function"]["name"] for t in fake_llm.requests[0].body["tools"]}
        assert "proposals__list_problems" in offered and "tickets__search_voices" in offered
        assert not offered & {"proposals__update_proposal", "proposals__register_run", "cases__record_case",
                              "proposals__verify_proposal"}
        fake_llm.script(["good", "malformed"])
        fallback = events(llm_client, "本周哪些问题在上升？", engine="llm")
        assert answer_of(fallback)["engine"] == "fallback" and "较上周显著上升" in answer_of(fallback)["text"]
    unconfigured = client.post("/api/chat", json={"message": "你好", "engine": "llm"})
    assert unconfigured.status_code == 422 and "not configured" in unconfigured.json()["error"]


# ------------------------------------------------------------------ chat wording: counts match lists, labels in Chinese


class ScriptedTools:
    """A toolbox that answers from fixed results, recording the calls."""

    def __init__(self, results: dict[str, dict]) -> None:
        self.results = results
        self.calls: list[tuple[str, dict]] = []

    async def call(self, server: str, tool: str, **arguments: object) -> dict:
        self.calls.append((tool, arguments))
        return self.results[tool]


def pending_proposal(number: int) -> dict:
    proposal = proposal_dict(proposal_id=f"PR-2026-W47-{number:03d}", evidence_voice_ids=[f"v{number}"])
    return {"proposal_id": proposal["proposal_id"], "status": "待认领", "overdue": number % 4 == 0,
            "due_date": f"2026-12-{number:02d}", "priority": "P2", "owner_department": "信息科技部",
            "problem": f"问题{number}", "tag": "t", "first_week": "2026-W47", "last_seen_week": "2026-W47",
            "completed_on": None, "proposal": proposal}


def rising_problem(number: int) -> dict:
    return cluster_dict(cluster_id=f"C{number:02d}", label=f"上升问题{number}", current_count=30 + number,
                        previous_count=5, growth_z=4.2, representative_voice_ids=[f"v{number}"]) | {"proposal_id": None}


@pytest.mark.parametrize("pending", [6, 12])
async def test_an_owner_answer_lists_what_it_counts(pending: int) -> None:
    from agents.chat import MAX_LISTED, answer_owner_proposals
    from agents.chat_intents import Slots

    tools = ScriptedTools({"list_proposals": {"items": [pending_proposal(n) for n in range(1, pending + 1)]}})
    answer = await answer_owner_proposals(tools, Slots(owner="信息科技部"), WEEK)  # type: ignore[arg-type]
    head, *listed = answer.text.splitlines()
    assert f"共 {pending} 条" in head and len(answer.proposal_ids) == len(listed)
    if pending <= MAX_LISTED:  # 6 pending: all six listed (it said 6 and listed 5)
        assert len(listed) == pending and "列出" not in head
    else:
        assert len(listed) == MAX_LISTED and f"列出最紧迫的前 {MAX_LISTED} 条" in head


async def test_a_rising_answer_lists_what_it_counts() -> None:
    from agents.chat import answer_rising
    from agents.chat_intents import Slots

    tools = ScriptedTools({"list_problems": {"run_id": "r1", "items": [rising_problem(n) for n in range(1, 7)]},
                           "get_voice": {"text": "验证码收不到"}})
    answer = await answer_rising(tools, Slots(), WEEK)  # type: ignore[arg-type]
    head, *listed = answer.text.splitlines()
    assert "共 6 个" in head and len(listed) == 6 and all(f"上升问题{n}" in answer.text for n in range(1, 7))


def test_tool_calls_read_as_chinese_sentences() -> None:
    from agents.chat import tool_label

    searched = tool_label("search_voices", {"week": "2026-W47", "business": "手机银行", "query": "登录", "limit": 5,
                                            "cursor": "x"})
    assert searched == "工具 search_voices → 检索客户声音（2026年第47周，手机银行，关键词“登录”，前 5 条）"
    assert tool_label("compare_periods", {"group_by": "funnel_tier", "segment": "老年客户", "date_from": "2026-11-01",
                                          "date_to": "2026-11-30"}) == \
        "工具 compare_periods → 对比本期与上期的客户声音（2026-11-01 至 2026-11-30，按漏斗层级，老年客户）"
    assert tool_label("get_service_matrix", {}) == "工具 get_service_matrix → 读取服务矩阵（各责任部门）"
    assert tool_label("a_new_tool", {"renamed_arg": 3}) == "工具 a_new_tool → 调用数据工具（renamed_arg=3）"


def test_chat_events_carry_chinese_labels(client: TestClient) -> None:
    stream = events(client, "本周哪些问题在上升？为什么？")
    progress = [e for e in stream if e["type"] in ("step", "tool")]
    assert progress and all(e["label"] for e in progress)
    understood = next(e for e in progress if e["type"] == "step" and e["name"] == "理解问题")
    assert understood["detail"]["intent"] == "rising"  # the machine fields stay
    assert understood["label"].startswith("理解问题：上升问题及原因") and "rising" not in understood["label"]
    problems = next(e for e in progress if e["type"] == "tool" and e["tool"] == "list_problems")
    assert problems["label"] == "工具 list_problems → 查询问题清单（2026年第47周，仅显著上升）"
    assert not any("{" in e["label"] for e in progress)  # no raw JSON


# ------------------------------------------------------------------ the review queue pages through every voice


def test_the_review_queue_pages_through_every_needs_review_voice(client: TestClient) -> None:
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, str | int] = {"week": WEEK, "limit": 3}
        if after:
            params["after"] = after
        page = client.get("/api/reviews", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 3
        seen += [i["voice_id"] for i in body["items"]]
        after = body["next_cursor"]
        if after is None:
            break
    voices = client.get(f"/api/runs/{body['run_id']}/voices").json()  # the week's latest run
    flagged = {v["id"] for v in voices if v["needs_review"]}
    assert len(flagged) > 7 and len(seen) == len(set(seen)) == body["total"] and flagged <= set(seen)
    bad = client.get("/api/reviews", params={"week": WEEK, "after": "not-a-cursor"})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]
    assert client.get("/api/reviews", params={"week": WEEK, "limit": 0}).status_code == 422


# ------------------------------------------------------------------ the dashboard's matrix chart stays readable


def test_the_matrix_chart_stays_readable_with_many_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo week's 61 problems, most of them in a few cells: every text stays inside its own cell of the
    severity × impact grid and overlaps no other (they used to spill over cell borders and crowd)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from voc.report import charts
    from voc.report.data import Problem

    cells = {(1, 2, "P4"): 13, (1, 4, "P3"): 10, (1, 3, "P4"): 9, (2, 3, "P4"): 5, (4, 3, "P2"): 4, (3, 3, "P3"): 4,
             (2, 4, "P3"): 4, (5, 3, "P2"): 3, (3, 5, "P2"): 2, (3, 4, "P2"): 2, (2, 2, "P4"): 2, (4, 4, "P1"): 1,
             (1, 5, "P3"): 1, (2, 5, "P3"): 1}  # (impact, severity, priority): problems, as in the demo's last week
    placed = [cell for cell, count in cells.items() for _ in range(count)]
    problems = [Problem(**cluster_dict(cluster_id=f"C{n:03d}", label="问题", severity=severity, impact=impact,
                                       priority=priority, current_count=10 + n, previous_count=3, rising=False),
                        quotes=[])
                for n, (impact, severity, priority) in enumerate(placed, start=1)]
    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        drawn.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert charts.matrix_chart(problems)[:4] == b"\x89PNG"
    figure = drawn[0]
    renderer = FigureCanvasAgg(figure).get_renderer()
    texts = [t for t in figure.axes[0].texts if t.get_text().strip()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    overlapping = [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes))
                   for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert not overlapping, overlapping[:5]
    to_data = figure.axes[0].transData.inverted()
    for text, box in zip(texts, boxes, strict=True):
        (x0, y0), (x1, y1) = to_data.transform([(box.x0, box.y0), (box.x1, box.y1)])
        cell = (math.floor(x0 + 0.5), math.floor(y0 + 0.5))
        assert cell == (math.floor(x1 + 0.5), math.floor(y1 + 0.5)), text.get_text()  # inside one cell
    shown = "\n".join(t.get_text() for t in texts)
    top = [p for p in problems if p.priority in ("P1", "P2")]
    per_cell = {(p.impact, p.severity) for p in top}
    assert all(p.cluster_id in shown or "等" in shown for p in top) and len(per_cell) > 1
    assert not any(p.cluster_id in shown for p in problems if p.priority in ("P3", "P4"))
    counts = [int(t.get_text().split()[0]) for t in texts if re.fullmatch(r"\d+ 个", t.get_text())]
    assert sum(counts) == len(problems)  # every problem is counted in its cell
