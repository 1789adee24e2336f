"""End to end: the servers as separate processes, over stdio and over streamable HTTP."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import free_port, wait_for_port, write_jsonl
from voc.config import Settings
from voc.ingest import Ingestor
from voc.knowledge_base import KnowledgeBase
from voc.storage import Store

pytestmark = pytest.mark.slow
ROW = {"id": "e2e-1", "created_at": "2026-11-18T10:00:00", "channel": "电话客服", "text": "热线排队四十分钟没人接"}


async def test_tickets_over_stdio(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    Ingestor(Store(settings.resolved_database_url), settings).ingest_file(write_jsonl(tmp_path / "v.jsonl", [ROW]))
    params = StdioServerParameters(command=sys.executable, args=["-m", "voc.cli", "mcp", "tickets"],
                                   env={**os.environ, "VOC_DATA_DIR": str(settings.data_dir)})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("get_voice", {"voice_id": "e2e-1"})
    assert result.structuredContent["text"] == ROW["text"]


@pytest.fixture
def http_cases_server(loaded_kb: KnowledgeBase):
    port = free_port()
    env = {**os.environ, "VOC_DATA_DIR": str(loaded_kb.settings.data_dir), "VOC_MCP_TOKEN": "s3cret"}
    process = subprocess.Popen([sys.executable, "-m", "voc.cli", "mcp", "cases", "--transport", "http",
                                "--port", str(port)], env=env, stderr=subprocess.PIPE)
    wait_for_port(port, process)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(timeout=10)


async def test_cases_over_http_with_bearer_token(http_cases_server: str) -> None:
    async with httpx.AsyncClient(headers={"Authorization": "Bearer s3cret"}, timeout=60) as http, \
            streamable_http_client(http_cases_server, http_client=http) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("search_cases", {"query": "热线排队等待太久", "top_k": 2})
    assert len(result.structuredContent["hits"]) == 2


async def test_http_refuses_a_missing_token(http_cases_server: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(http_cases_server, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401


def test_no_transport_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    """The guard lives where the server starts, not only in `voc mcp`: the writing tools never
    reach the network unauthenticated."""
    from mcp_servers import SERVERS
    from mcp_servers.common import run

    server = SERVERS["proposals"](Settings(data_dir=tmp_path))
    with pytest.raises(ValueError, match="bearer token"):
        run(server, "http", "0.0.0.0", 0, None)


@pytest.mark.parametrize(("host", "shown"), [("127.0.0.1", "http://127.0.0.1:8799/mcp"),
                                             ("::1", "http://[::1]:8799/mcp")])
def test_http_prints_its_endpoint_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], host: str, shown: str) -> None:
    import uvicorn

    from mcp_servers import SERVERS
    from mcp_servers.common import run

    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    run(SERVERS["tickets"](Settings(data_dir=tmp_path)), "http", host, 8799, None)
    printed = capsys.readouterr()
    assert shown in printed.err and "tickets" in printed.err and printed.out == ""
    assert served["host"] == host and served["port"] == 8799
