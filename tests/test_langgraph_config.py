"""LangGraph's own tooling (Studio, the platform, `langgraph dev`) can load the graph as the
project declares it, and ask it for its schemas."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

ROOT = Path(__file__).resolve().parent.parent


def test_langgraph_json_loads_as_written() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    if "env" in config:  # a named env file must exist, or the CLI refuses to start
        assert (ROOT / config["env"]).is_file()
    for dependency in config["dependencies"]:
        assert (ROOT / dependency).exists()
    for name, target in config["graphs"].items():
        path, attribute = target.split(":")
        spec = importlib.util.spec_from_file_location(f"langgraph_{name}", ROOT / path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        graph = getattr(module, attribute)
        assert isinstance(graph, CompiledStateGraph)
        schema = graph.get_input_jsonschema()
        assert {"run_id", "period"} <= set(schema["properties"])
        assert graph.get_output_jsonschema()["properties"]


def test_chat_graph_schema() -> None:
    from agents.chat import build_chat_graph

    assert build_chat_graph().compile().get_input_jsonschema()["properties"]
