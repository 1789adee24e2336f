"""What every server does the same way: strict, described, bounded arguments with one paging
vocabulary, plain errors, the product's version, and schemas a LangChain agent can load."""

import json
import re
from pathlib import Path

import pytest
from mcp.server.fastmcp import FastMCP
from mcp.shared.memory import create_connected_server_and_client_session

import voc
from mcp_servers import SERVERS, cases, knowledge, proposals, tickets
from tests.conftest import kb_with_voices
from voc.knowledge_base import KnowledgeBase

ROWS = [{"id": f"c{i}", "created_at": f"2026-11-18T1{i}:00:00", "channel": "电话客服", "business": "信用卡",
         "customer_id": f"K{i}", "text": f"信用卡年费被扣了第{i}次，我要投诉"} for i in range(3)]
# One valid call per server, to which an unknown argument is added.
CALLS = {"tickets": ("count_voices", {"group_by": "channel", "week": "2026-W47"}),
         "knowledge": ("search_knowledge", {"query": "整改时限"}),
         "cases": ("search_cases", {"query": "验证码"}),
         "proposals": ("list_proposals", {})}
RENAMED = {"top_k", "n", "after", "page_size", "size", "k"}


@pytest.fixture(scope="module")
def servers(loaded_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, FastMCP]:
    settings = kb_with_voices(loaded_kb, tmp_path_factory.mktemp("conventions"), ROWS)
    kb = KnowledgeBase(settings)
    return {"tickets": tickets.create_server(settings), "knowledge": knowledge.create_server(settings, kb),
            "cases": cases.create_server(settings, kb), "proposals": proposals.create_server(settings)}


@pytest.mark.parametrize("name", list(SERVERS))
async def test_every_argument_is_described_bounded_and_strict(servers, name: str) -> None:
    async with create_connected_server_and_client_session(servers[name]) as client:
        initialized = await client.initialize()
        tools = (await client.list_tools()).tools
    assert initialized.serverInfo.name == name and initialized.serverInfo.version == voc.__version__
    for tool in tools:
        schema = tool.inputSchema
        assert schema.get("additionalProperties") is False, tool.name
        assert tool.description and tool.outputSchema, tool.name
        for argument, spec in schema["properties"].items():
            assert spec.get("description"), f"{tool.name}.{argument} has no description"
            assert argument not in RENAMED, f"{tool.name}.{argument}: the paging argument is `limit`"
            kinds = {spec.get("type")} | {s.get("type") for s in spec.get("anyOf", [])}
            if "integer" in kinds:
                assert "minimum" in spec and "maximum" in spec, f"{tool.name}.{argument} is unbounded"
            if argument == "limit":
                assert spec["minimum"] == 1 and spec["maximum"] <= 500, tool.name
            if argument == "offset":
                assert spec["minimum"] == 0, tool.name


@pytest.mark.parametrize("name", list(SERVERS))
async def test_unknown_arguments_are_refused_on_every_server(servers, name: str) -> None:
    tool, arguments = CALLS[name]
    async with create_connected_server_and_client_session(servers[name]) as client:
        valid = await client.call_tool(tool, arguments)
        invalid = await client.call_tool(tool, arguments | {"sentimnet": "负面"})
    assert not valid.isError, valid.content
    assert invalid.isError and "unknown argument sentimnet" in invalid.content[0].text


async def test_the_tools_load_in_langchain_with_descriptions_and_schemas(servers) -> None:
    from langchain_mcp_adapters.tools import load_mcp_tools

    for name, server in servers.items():
        async with create_connected_server_and_client_session(server) as session:
            tools = {t.name: t for t in await load_mcp_tools(session)}
            assert tools and all(t.description for t in tools.values()), name
            for tool in tools.values():
                schema = tool.args_schema
                assert isinstance(schema, dict), tool.name  # the server's JSON schema, as advertised
                assert schema.get("additionalProperties") is False, tool.name
                assert all(spec.get("description") for spec in schema["properties"].values()), tool.name
            if name == "knowledge":
                limit = tools["search_knowledge"].args_schema["properties"]["limit"]
                assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 20, 5)
                result = await tools["search_knowledge"].ainvoke({"query": "P1整改时限", "limit": 2})
                hits = json.loads(result[0]["text"] if isinstance(result, list) else result)["hits"]
                assert len(hits) == 2
            if name == "tickets":
                assert {"sentiment", "owner_department", "tag", "cluster_id", "priority", "dimension"} <= set(
                    tools["count_voices"].args_schema["properties"])


async def test_the_product_version_and_no_sdk_version(servers) -> None:
    async with create_connected_server_and_client_session(servers["cases"]) as client:
        info = (await client.initialize()).serverInfo
    import mcp

    assert info.version == voc.__version__
    assert voc.__version__ != getattr(mcp, "__version__", None)


def test_the_readme_registers_every_server() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## MCP servers", 1)[1].split("\n## ", 1)[0]
    snippet = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    registered = snippet["mcpServers"]
    assert {entry["args"][1] for entry in registered.values()} == set(SERVERS)
    assert all(entry["args"][0] == "mcp" and "VOC_DATA_DIR" in entry["env"] for entry in registered.values())
    for name in SERVERS:
        assert f"`{name}`" in section
