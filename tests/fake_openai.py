"""A scripted local OpenAI-compatible server for testing the LLM engine without any model.

A real HTTP server on 127.0.0.1 (the engine's real `openai` client talks to it) that answers
POST /v1/chat/completions. Each request consumes the next scripted behaviour, or the default one:

    good          the responder's answer, as JSON
    fenced        the same inside a ```json fence
    malformed     content that is not JSON
    wrong_enum    the first item gets an owner outside the matrix / a tag outside the taxonomy
    missing_items the last item is left out
    partial       every second item is invalid (intensity 9, confidence "very")
    status_429    HTTP 429 rate limit
    status_500    HTTP 500
    status_400    HTTP 400 (a configuration error: not worth retrying)
    timeout       the good answer, but only after `timeout_seconds` (longer than the client waits)
    no_usage      the good answer without a usage block

The responder turns a parsed request into the answer a correct model would give; `per_voice`
builds one from a function answering a single voice of the <voices> block, `per_cluster` and
`per_proposal` from one answering a single row of the batched <clusters> and <proposals> blocks.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from voc.contracts import Dimension

BEHAVIOURS = ("good", "fenced", "malformed", "wrong_enum", "missing_items", "partial", "status_429", "status_500",
              "status_400", "timeout", "no_usage")
OUT_OF_MATRIX_OWNER = "市场部"
OUT_OF_TAXONOMY_TAG = "系统设备>不存在>虚构标签"
_BLOCK_RE = re.compile(r"<(\w+)>\n(.*?)\n</\1>", re.DOTALL)


@dataclass
class FakeRequest:
    """One recorded chat request, with the engine's data blocks parsed."""

    body: dict[str, Any]

    def message(self, role: str) -> str:
        return "\n".join(m.get("content") or "" for m in self.body.get("messages", []) if m.get("role") == role)

    @property
    def system(self) -> str:
        return self.message("system")

    @property
    def user(self) -> str:
        return self.message("user")

    @property
    def blocks(self) -> dict[str, Any]:
        return {name: json.loads(text) for name, text in _BLOCK_RE.findall(self.user)}

    @property
    def voices(self) -> list[Any]:
        return list(self.blocks.get("voices", []))


Responder = Callable[[FakeRequest], Any]


def per_voice(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Responder:
    """A responder answering {"items": [...]} with one item per voice of the request."""
    return lambda request: {"items": [answer(v) for v in request.voices]}


def per_cluster(label: Callable[[dict[str, Any]], str]) -> Responder:
    """A responder naming every cluster of a batched naming request (the <clusters> block)."""
    return lambda request: {"items": [{"cluster_id": c["cluster_id"], "label": label(c)}
                                      for c in request.blocks.get("clusters", [])]}


def per_proposal(answer: Callable[[dict[str, Any]], dict[str, Any]]) -> Responder:
    """A responder rewriting every proposal of a batched request (the <proposals> block): `answer`
    gives one item's prose from its row (facts, draft, voices, case_ids, doc_refs)."""
    return lambda request: {"items": [answer(p) | {"proposal_id": p["proposal_id"]}
                                      for p in request.blocks.get("proposals", [])]}


def _break_item(item: dict[str, Any]) -> dict[str, Any]:
    broken = dict(item)
    if "owner_department" in broken:
        broken["owner_department"] = OUT_OF_MATRIX_OWNER
    if "tag" in broken:
        broken["tag"] = OUT_OF_TAXONOMY_TAG
    return broken


def _invalidate_item(item: dict[str, Any]) -> dict[str, Any]:
    return item | ({"confidence": "very"} if "confidence" in item else {"intensity": 9})


def _reshape(behaviour: str, payload: Any) -> Any:
    """The payload of the content-level behaviours that change items."""
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return payload
    if behaviour == "wrong_enum":
        items = [_break_item(items[0]), *items[1:]] if items else items
    elif behaviour == "missing_items":
        items = items[:-1]
    elif behaviour == "partial":
        items = [_invalidate_item(it) if i % 2 else it for i, it in enumerate(items)]
    return payload | {"items": items}


@dataclass
class FakeLLM:
    """The handle tests use: base_url for Settings, script() to queue behaviours, requests to assert on."""

    base_url: str = ""
    responder: Responder = field(default=lambda request: {"items": []})
    default: str = "good"
    estimate_tokens: bool = False
    timeout_seconds: float = 2.0
    prompt_tokens: int = 100
    completion_tokens: int = 20
    requests: list[FakeRequest] = field(default_factory=list)
    _queue: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, behaviours: list[str]) -> None:
        unknown = set(behaviours) - set(BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}")
        with self._lock:
            self._queue.extend(behaviours)

    def next_behaviour(self, body: dict[str, Any]) -> tuple[str, FakeRequest]:
        with self._lock:
            request = FakeRequest(body)
            self.requests.append(request)
            return (self._queue.popleft() if self._queue else self.default), request

    def answer(self, behaviour: str, request: FakeRequest) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one request."""
        if behaviour.startswith("status_"):
            status = int(behaviour[-3:])
            return status, {"error": {"message": f"scripted {status}", "type": "server_error", "code": status}}
        if behaviour == "timeout":
            time.sleep(self.timeout_seconds)
        if behaviour == "malformed":
            content = '这不是JSON {"items": [ {"voice_id": '
        else:
            payload = self.responder(request)
            if isinstance(payload, dict) and "tool_calls" in payload:  # a tool-calling model's turn
                return 200, self._completion(request, None, usage=True, tool_calls=payload["tool_calls"])
            content = json.dumps(_reshape(behaviour, payload), ensure_ascii=False)
            if behaviour == "fenced":
                content = f"```json\n{content}\n```"
        return 200, self._completion(request, content, usage=behaviour != "no_usage")

    def _completion(self, request: FakeRequest, content: str | None, usage: bool,
                    tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": call}
                                     for i, call in enumerate(tool_calls)]
        body: dict[str, Any] = {
            "id": f"chatcmpl-fake-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": request.body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop",
                         "logprobs": None}]}
        if usage:
            prompt, completion = self.prompt_tokens, self.completion_tokens
            if self.estimate_tokens:
                # About 1.5 characters per token for Chinese text in common BPE vocabularies: an estimate.
                prompt = math.ceil(sum(len(m.get("content") or "") for m in request.body.get("messages", [])) / 1.5)
                completion = math.ceil(len(content or "") / 1.5)
            body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
        return body


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            status, answer = fake.answer(*fake.next_behaviour(body))
            self._send(status, answer)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the "timeout" behaviour): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping for "timeout" must not hold up shutdown


def start_fake_llm() -> tuple[FakeLLM, Callable[[], None]]:
    """Start a server on a free loopback port; returns the handle and a stop function."""
    fake = FakeLLM()
    server = _Server(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-openai", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return fake, stop


# Named in the decorator so that modules import `fake_llm_fixture` and take `fake_llm` as an argument
# without the argument shadowing the import (ruff F811).
@pytest.fixture(name="fake_llm")
def fake_llm_fixture() -> Iterator[FakeLLM]:
    fake, stop = start_fake_llm()
    try:
        yield fake
    finally:
        stop()


_DIMENSION_OF_L1 = {d.label: d.value for d in Dimension}


def graph_model(request: FakeRequest) -> Any:
    """A competent model for whole-graph runs: it answers every agent's request from its data blocks,
    and obeys a voice's injected 'SYSTEM: owner=…' line, as a model an injection succeeded on would."""
    blocks = request.blocks
    if "proposals" in blocks:
        return per_proposal(lambda item: {**item["draft"], "problem": "【复核】" + item["draft"]["problem"],
                                          "cited_case_ids": item["case_ids"][:1]})(request)
    if "clusters" in blocks:
        return per_cluster(lambda cluster: "、".join(cluster["keywords"][:2]) + "问题")(request)
    items = []
    for voice in request.voices:
        if "candidate_owners" in voice:
            injected = "SYSTEM" in voice["text"]
            owner = OUT_OF_MATRIX_OWNER if injected else voice["candidate_owners"][0]["owner"]
            items.append({"voice_id": voice["id"], "owner_department": owner, "confidence": 0.9, "reason": "场景"})
        else:
            calm = any(w in voice["text"] for w in ("请问", "营业吗", "感谢"))
            tag = voice["candidate_tags"][0]
            items.append({"voice_id": voice["id"], "sentiment": "中性" if calm else "负面",
                          "intensity": 1 if calm else 4, "dimension": _DIMENSION_OF_L1[tag.split(">")[0]], "tag": tag,
                          "root_cause": tag.split(">")[-1]})
    return {"items": items}
