"""A new user's first week: a bank's own small GBK export with its own headers and channel names →
ingest → run → report → chat → an MCP client. No step may fail or print a traceback."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from pathlib import Path

import pytest
from mcp.shared.memory import create_connected_server_and_client_session
from typer.testing import CliRunner

from mcp_servers import tickets
from tests.test_app import events, local_client
from voc.config import Settings, get_settings
from voc.knowledge_base import KnowledgeBase

WEEK = "2026-W48"
HEADERS = ["受理单号", "来电日期", "渠道来源", "客户标识", "客户类别", "产品", "客户反映内容", "处理状态"]
PROBLEMS = [
    ("手机银行", "手机银行", "手机银行升级到新版本以后一打开就闪退，根本登录不了"),
    ("95588热线", "手机银行", "客户来电反映手机银行新版本闪退，重装也没用"),
    ("微信银行", "手机银行", "更新后APP闪退，转账转不了，急用钱"),
    ("95588热线", "信用卡", "信用卡年费又被扣了，之前说好免年费的"),
    ("网点", "信用卡", "柜台说年费不能退，我要投诉"),
    ("12378转办", "信用卡", "客户通过12378反映信用卡年费被重复扣收，要求退还"),
    ("95588热线", "客服服务", "热线排队四十分钟都转不到人工"),
    ("微信银行", "客服服务", "在线客服一直是机器人回复，找不到人工"),
    ("网点", "借记卡", "社保卡激活要跑三趟网点，太麻烦了"),
    ("手机银行", "理财", "理财产品到期了钱迟迟不到账"),
]


def _export(path: Path) -> Path:
    rows = []
    for i in range(30):
        channel, product, text = PROBLEMS[i % len(PROBLEMS)]
        day = 23 + i % 5  # Monday 2026-11-23 … Friday
        rows.append([f"GD{2026112300 + i}", f"2026/11/{day} {9 + i % 8}:{i % 60:02d}", channel, f"KH{880000 + i}",
                     "老年" if i % 7 == 0 else "零售", product, f"{text}（第{i + 1}位客户，电话1390000{i:04d}）",
                     "已受理"])
    with path.open("w", encoding="gbk", newline="") as handle:
        csv.writer(handle).writerows([HEADERS, *rows])
    return path


@pytest.fixture
def new_user(loaded_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A new data directory: no store, no Chroma (the vectors of the knowledge files are cached)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(loaded_kb.settings.embedding_cache_path, data / "embeddings.sqlite")
    monkeypatch.setenv("VOC_DATA_DIR", str(data))
    get_settings.cache_clear()
    yield Settings(data_dir=data)
    get_settings.cache_clear()


def test_a_first_week_from_a_banks_own_export(new_user: Settings, tmp_path: Path) -> None:
    from app import create_app
    from voc.cli import app

    column_map = tmp_path / "our_headers.yaml"
    column_map.write_text("columns:\n  受理单号: id\n  来电日期: created_at\n  渠道来源: channel\n"
                          "  客户标识: customer_id\n  客户类别: customer_segment\n  产品: business\n"
                          "  客户反映内容: text\n", encoding="utf-8")
    runner = CliRunner()
    steps = {
        "ingest": ["ingest", str(_export(tmp_path / "我行导出.csv")), "--column-map", str(column_map)],
        "run": ["run", "--week", WEEK],
        "report": ["report", "--week", WEEK],
    }
    for name, args in steps.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, (name, result.output)
        if name == "ingest":
            assert "30" in result.output and "拒收" in result.output
    reports = new_user.resolved_data_dir / "reports" / WEEK
    markdown = (reports / "report.md").read_text(encoding="utf-8")
    assert "13900000" not in markdown and (reports / "report.pdf").stat().st_size > 10_000

    with local_client(create_app(new_user)) as client:
        stream = events(client, "本周哪些问题在上升？为什么？")
        assert stream[-1]["type"] == "done" and any(e["type"] == "answer" for e in stream)
        assert not any(e["type"] == "error" for e in stream), stream
        voices = client.get("/api/voices", params={"week": WEEK, "limit": 50}).json()
        assert len(voices["items"]) == 30

    asyncio.run(_ask_the_tickets_server(new_user))


async def _ask_the_tickets_server(settings: Settings) -> None:
    """What an outside assistant sees of the same week over MCP."""
    async with create_connected_server_and_client_session(tickets.create_server(settings)) as session:
        tools = (await session.list_tools()).tools
        search = next(t for t in tools if t.name == "search_voices")
        arguments = {"week": WEEK, "query": "闪退"}
        assert set(arguments) <= set(search.inputSchema["properties"])
        found = await session.call_tool("search_voices", arguments)
        assert not found.isError, found.content
        text = json.dumps(found.structuredContent, ensure_ascii=False)
        assert "闪退" in text and "13900000" not in text
