"""The agents' LLM client on its own: prompt templates, JSON extraction, schemas derived from the answer
models, tenacity's retries (against an httpx mock transport), usage, and the chat engine on the client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jinja2
import openai
import pytest
from pydantic import BaseModel, ValidationError

from agents.application import ProposalAnswer
from agents.attribution import OwnerAnswer
from agents.chat_llm import ChatLLM
from agents.configuration import Configuration
from agents.context import RunContext, llm_stats
from agents.llm_client import (
    InvalidAnswer,
    Items,
    LLMClient,
    LLMUnavailable,
    VoiceItem,
    parse_items,
    parse_json,
    response_schema,
    validated,
)
from agents.prompts import load_prompt
from agents.state import RunState
from agents.tracing import TagChoice, TraceAnswer
from tests.fake_openai import FakeLLM, fake_llm_fixture  # noqa: F401
from voc.config import Settings
from voc.contracts import Dimension, Sentiment, Signal
from voc.knowledge import load_service_matrix, load_taxonomy

_DEFAULTS = Settings()
SCOPES = {d.name: d.scope for d in load_service_matrix(_DEFAULTS.service_matrix_path).departments}
TAGS = {t.path: TagChoice(t.dimension, t.definition) for t in load_taxonomy(_DEFAULTS.taxonomy_path).tags}
VALUES: dict[str, dict[str, Any]] = {"attribution": {"departments": SCOPES}, "tracing": {"tags": TAGS}}
# attribution and tracing v2: the cascade's prompts list only a batch's candidates
VERSIONS = {"attribution": "v2", "tracing": "v2", "analysis": "v2", "application": "v2"}


# ------------------------------------------------------------------ prompt templates


@pytest.mark.parametrize("agent", ["attribution", "tracing", "analysis", "application", "chat"])
def test_prompts_are_versioned_templates_that_ask_for_json(agent: str) -> None:
    prompt = load_prompt(agent)
    text = prompt.render(**VALUES.get(agent, {}))
    assert prompt.version == VERSIONS.get(agent, "v1")
    assert "JSON" in text and "指令" in text and not text.startswith("version")
    assert "{{" not in text and "{%" not in text


def test_tracing_prompt_lists_the_contract_enums_and_the_candidate_tags() -> None:
    candidates = dict(list(TAGS.items())[:2])
    text = load_prompt("tracing").render(tags=candidates)
    assert all(f"- {d}（{d.label}）：" in text for d in Dimension)
    assert f"枚举：{'、'.join(Dimension)}" in text
    assert all(f"- {s}：" in text for s in (*Sentiment, *Signal))
    assert all(f"- {path}（{tag.dimension}）：{tag.definition}\n" in text + "\n" for path, tag in candidates.items())
    assert not any(path in text for path in list(TAGS)[2:] if path != "系统设备>登录认证>验证码收不到")  # the example


def test_attribution_prompt_lists_the_candidate_departments_with_their_scope() -> None:
    text = load_prompt("attribution").render(departments={"甲部": "负责甲", "乙部": "负责乙"})
    assert "- 甲部：负责甲\n- 乙部：负责乙" in text


def test_a_missing_template_value_fails_the_render() -> None:
    with pytest.raises(jinja2.UndefinedError):
        load_prompt("tracing").render()


def test_the_newest_template_is_loaded_and_its_header_checked(tmp_path: Path) -> None:
    (tmp_path / "demo.v1.md").write_text("version: v1\n旧 {{ x }}", encoding="utf-8")
    (tmp_path / "demo.v2.md").write_text("version: v2\n新 {{ x }}", encoding="utf-8")
    (tmp_path / "demo.v10.md").write_text("version: v9\n错", encoding="utf-8")
    with pytest.raises(ValueError, match="version: v10"):
        load_prompt("demo", tmp_path)
    (tmp_path / "demo.v10.md").unlink()
    prompt = load_prompt("demo", tmp_path)  # a failure is not cached
    assert prompt.version == "v2" and prompt.render(x="JSON") == "新 JSON"


# ------------------------------------------------------------------ JSON extraction


@pytest.mark.parametrize(("content", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('  {"a": 2}\n', {"a": 2}),
    ('```json\n{"a": 3}\n```', {"a": 3}),
    ('```\n{"a": 4}\n```', {"a": 4}),
    ('<think>先看部门清单{}</think>\n以下是结果：{"a": 5}。', {"a": 5}),
    ('<think>想一想</think>```json\n{"a": 6}\n```', {"a": 6}),
    ('结果如下：{"a": {"b": [1, 2]}, "c": "}"} 请查收', {"a": {"b": [1, 2]}, "c": "}"}),
    ('[{"voice_id": "V-1"}]', [{"voice_id": "V-1"}]),
    ('{"text": "中文，不转义"}', {"text": "中文，不转义"}),
])
def test_parse_json_extracts_the_answer(content: str, expected: Any) -> None:
    assert parse_json(content) == expected


@pytest.mark.parametrize("content", [None, "", "不是JSON", '{"a": ', '{"a": 1} 以及 {"b": 2}', "<think>{}</think>"])
def test_parse_json_refuses_what_is_not_one_json_value(content: str | None) -> None:
    with pytest.raises(InvalidAnswer):
        parse_json(content)


class Label(BaseModel):
    label: str


def test_validated_checks_the_model() -> None:
    assert validated('```json\n{"label": "验证码"}\n```', Label) == Label(label="验证码")
    with pytest.raises(ValidationError):
        validated('["验证码"]', Label)


def test_parse_items_keeps_valid_known_first_items() -> None:
    content = json.dumps({"items": [{"id": "V-1"}, {"voice_id": "V-1"}, {"voice_id": "V-9"}, {"voice": "V-2"}]})
    found = parse_items(content, VoiceItem, {"V-1", "V-2"}, lambda item: item.voice_id.lower())
    assert found == {"V-1": "v-1"}  # "id" accepted; the duplicate, the unknown and the invalid dropped
    with pytest.raises(InvalidAnswer, match="no valid item"):
        parse_items(content, VoiceItem, {"V-2"}, lambda item: item)
    with pytest.raises(InvalidAnswer, match="no items list"):
        parse_items('{"items": {}}', VoiceItem, {"V-1"}, lambda item: item)


# ------------------------------------------------------------------ schemas from the answer models


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [n for item in node for n in _walk(item)]
    if isinstance(node, dict):
        return [node, *_walk(list(node.values()))]
    return []


def test_trace_schema_is_derived_from_the_model() -> None:
    schema = response_schema(Items[TraceAnswer], {"tag": list(TAGS)})
    item = schema["properties"]["items"]["items"]
    assert set(item["properties"]) == set(TraceAnswer.model_fields)
    assert item["properties"]["dimension"]["enum"] == list(Dimension)
    assert item["properties"]["sentiment"]["enum"] == list(Sentiment)
    assert item["properties"]["signals"]["items"]["enum"] == list(Signal)
    assert item["properties"]["tag"]["enum"] == list(TAGS)
    assert item["properties"]["intensity"] | {"type": "integer"} == {"type": "integer", "minimum": 1, "maximum": 5}
    # Strict structured output: every object closed and fully required, and no reference to resolve.
    objects = [n for n in _walk(schema) if n.get("type") == "object"]
    assert objects and all(o["additionalProperties"] is False and o["required"] == list(o["properties"])
                           for o in objects)
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema


def test_runtime_choices_narrow_strings_and_lists() -> None:
    owner = response_schema(Items[OwnerAnswer], {"owner_department": list(SCOPES)})
    assert owner["properties"]["items"]["items"]["properties"]["owner_department"]["enum"] == list(SCOPES)
    proposal = response_schema(ProposalAnswer, {"cited_case_ids": ["CASE-011"]})
    cited = proposal["properties"]["cited_case_ids"]["anyOf"]
    assert {"type": "null"} in cited and {"type": "array", "items": {"type": "string", "enum": ["CASE-011"]}} in cited
    assert set(proposal["properties"]) == set(ProposalAnswer.model_fields)


def test_unknown_signals_are_dropped_not_the_answer() -> None:
    answer = TraceAnswer.model_validate({"voice_id": "V-1", "sentiment": Sentiment.NEGATIVE, "intensity": 2,
                                         "dimension": Dimension.MACHINE, "tag": "t", "root_cause": " 原因 ",
                                         "signals": [Signal.SARCASM, "编的", {"x": 1}, Signal.SARCASM]})
    assert answer.signals == [Signal.SARCASM] and answer.root_cause == "原因"


# ------------------------------------------------------------------ retries (tenacity) against an httpx mock


def completion(content: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


def mocked(statuses: list[int], tmp_path: Path, **overrides: Any) -> tuple[LLMClient, list[float]]:
    """A client whose endpoint answers with these statuses in turn, then with a good label."""
    queue = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = queue.pop(0) if queue else 200
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        body = completion('{"label": "验证码收不到"}') if status == 200 else {"error": {"message": "scripted"}}
        return httpx.Response(status, json=body)

    transport = openai.AsyncOpenAI(base_url="http://llm.test/v1", api_key="k",
                                   http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    values = {"data_dir": tmp_path, "llm_base_url": "http://llm.test/v1", "llm_model": "m",
              "llm_backoff_seconds": 0.5, "llm_max_retries": 3} | overrides
    client = LLMClient(Settings(**values), transport)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    client.sleep = record
    return client, sleeps


async def ask_label(client: LLMClient) -> str | None:
    return await client.ask("label", "system JSON", "user", response_schema(Label),
                            lambda content: validated(content, Label).label)


async def test_a_transient_error_is_retried_then_succeeds(tmp_path: Path) -> None:
    client, sleeps = mocked([503], tmp_path)
    assert await ask_label(client) == "验证码收不到"
    assert client.stats.as_dict() == {"calls": 2, "prompt_tokens": 10, "completion_tokens": 2, "retries": 1,
                                      "failures": 0, "voices": 0}
    assert sleeps == [0.5]


async def test_backoff_doubles_until_the_attempts_are_spent(tmp_path: Path) -> None:
    client, sleeps = mocked([429, 0, 500, 502], tmp_path)
    assert await ask_label(client) is None
    assert sleeps == [0.5, 1.0, 2.0]  # three retries after the first attempt, then given up
    assert client.stats.calls == 4 and client.stats.retries == 3 and client.stats.failures == 1


async def test_a_configuration_error_is_not_retried(tmp_path: Path) -> None:
    client, sleeps = mocked([401], tmp_path)
    assert await ask_label(client) is None
    assert sleeps == [] and client.stats.calls == 1 and client.stats.failures == 1


def test_an_unconfigured_client_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable):
        LLMClient(Settings(data_dir=tmp_path, llm_base_url=None, llm_model=None))


# ------------------------------------------------------------------ usage and prompt versions


def test_usage_reports_the_prompt_versions_kept_across_a_resume(tmp_path: Path) -> None:
    client, _ = mocked([], tmp_path)
    client.system_prompt("analysis")
    assert client.usage()["prompts"] == {"analysis": "v2"}
    context = RunContext(settings=client.settings, config=Configuration(), llm=client)
    before: RunState = {"llm": {"calls": 7, "prompts": {"attribution": "v1", "tracing": "v1"}}}
    report = llm_stats(context, before)
    assert report["prompts"] == {"analysis": "v2", "attribution": "v1", "tracing": "v1"}
    assert llm_stats(RunContext(settings=client.settings, config=Configuration()), before) == {}  # offline


# ------------------------------------------------------------------ the chat engine on the client


class NoTools:
    """A toolbox without servers: the model can only answer."""

    def __init__(self) -> None:
        self.sessions: dict[str, Any] = {}


async def test_chat_engine_retries_and_extracts_its_answer(fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.responder = lambda request: {"text": "本周验证码问题上升", "voice_ids": ["V-1"]}
    fake_llm.script(["status_500", "fenced"])
    chat = ChatLLM(Settings(data_dir=tmp_path, llm_base_url=fake_llm.base_url, llm_model="m",
                            llm_backoff_seconds=0.01, llm_max_retries=1))
    answer = await chat.answer(NoTools(), [{"role": "user", "content": "本周哪些问题在上升？"}], lambda event: None)
    assert answer is not None and answer.text == "本周验证码问题上升"
    assert answer.voice_ids == []  # no tool returned V-1: an invented citation is dropped
    assert chat.stats.calls == 2 and chat.stats.retries == 1 and chat.llm.prompts == {"chat": "v1"}
    assert "JSON" in fake_llm.requests[0].system
