"""The agents' LLM client: one OpenAI-compatible endpoint, retries, usage, JSON answers.

Transport is openai's AsyncOpenAI against VOC_LLM_BASE_URL with the client's own retries switched
off: tenacity's policy below is the only one (exponential backoff on 429, 5xx, timeouts and unusable
answers; any other 4xx is configuration and is not retried). Every answer is extracted from its text
by `parse_json` and validated with a pydantic model; in `json_schema` mode the request carries that
model's schema (`response_schema`). What the agents ask lives in the agents' modules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from agents.prompts import load_prompt, voices_message
from agents.schemas import VoiceInput
from voc.config import Settings

if TYPE_CHECKING:
    # Imported where a client exists: offline runs never pay for the SDK's import (about 0.4 s).
    import openai
    from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionToolUnionParam
    from openai.types.chat.completion_create_params import ResponseFormat

log = logging.getLogger(__name__)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_THINK_RE = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)
_FENCE_RE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_SCHEMA_NOISE = ("title", "default")  # strict structured output wants neither


class LLMUnavailable(RuntimeError):
    """No endpoint or model configured: the run stays on the offline engine."""


class InvalidAnswer(ValueError):
    """An answer unusable as a whole (not JSON, wrong shape, nothing valid): worth another attempt."""


@dataclass
class LLMStats:
    """run.json `llm` and the eval's cost read these names: extend them, never rename."""

    calls: int = 0  # requests sent, failed ones included: what the endpoint bills or rate-limits
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    failures: int = 0  # requests given up after all retries
    voices: int = 0  # voices sent to the model by 归因 and 溯源 (a voice sent to both counts twice)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# ------------------------------------------------------------------ answers: JSON, models, schemas


def parse_json(content: str | None) -> Any:
    """JSON from a model answer, tolerating a ``` fence around it and the <think> block reasoning
    models (DeepSeek-R1, Qwen3) put before it."""
    text = _THINK_RE.sub("", content or "").strip()
    fenced = _FENCE_RE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        # A sentence around the object ("以下是结果：{…}") is common without enforced JSON mode.
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end and (start > 0 or end < len(text) - 1):
            return parse_json(text[start : end + 1])
        raise InvalidAnswer(f"answer is not JSON: {error}") from None


def validated(content: str | None, model: type[M]) -> M:
    """The answer as `model`; a ValidationError, like InvalidAnswer, makes the request worth retrying."""
    return model.model_validate(parse_json(content))


class KeyedItem(BaseModel):
    """One item of a batched answer, keyed by what it answers: a voice, a cluster, a proposal."""

    @property
    def key(self) -> str:
        raise NotImplementedError


class VoiceItem(KeyedItem):
    """One item of a per-voice answer. Models write "id" as often as "voice_id"; both name the voice."""

    voice_id: str = Field(validation_alias=AliasChoices("voice_id", "id"))

    @property
    def key(self) -> str:
        return self.voice_id


V = TypeVar("V", bound=KeyedItem)
X = TypeVar("X")


class Items(BaseModel, Generic[M]):
    """A batched answer: {"items": [...]}, one item per voice (cluster, proposal) of the batch."""

    items: list[M]


def parse_items(content: str | None, model: type[V], ids: set[str], build: Callable[[V], T | None]) -> dict[str, T]:
    """Valid items by key. Invalid, unknown or duplicate items are dropped one by one (`build` may
    refuse an item by returning None or raising InvalidAnswer); an answer with no valid item at all is
    retried as a whole."""
    payload = parse_json(content)
    raws = payload.get("items") if isinstance(payload, dict) else payload
    if not isinstance(raws, list):
        raise InvalidAnswer("answer has no items list")
    found: dict[str, T] = {}
    for raw in raws:
        try:
            answer = model.model_validate(raw)
            item = build(answer) if answer.key in ids and answer.key not in found else None
        except ValidationError as error:  # the answer's item, or the result built from it
            log.warning("invalid item dropped: %s", error.errors(include_url=False)[:3])
            continue
        except InvalidAnswer as error:
            log.warning("invalid item dropped: %s", error)
            continue
        if item is not None:
            found[answer.key] = item
    if not found and ids:
        raise InvalidAnswer("no valid item in the answer")
    return found


def response_schema(model: type[BaseModel], choices: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """The strict JSON schema of an answer model (every property required, no other allowed, no $ref).
    `choices` narrows string fields, or the strings of list fields, named there to values known only
    at run time: the matrix's departments, the taxonomy's tags, a proposal's case ids."""
    schema = model.model_json_schema()
    return _strict(schema, schema.pop("$defs", {}), choices or {})


def _strict(node: Any, defs: dict[str, Any], choices: Mapping[str, Sequence[str]]) -> Any:
    if isinstance(node, list):
        return [_strict(n, defs, choices) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:  # inlined: local servers (Ollama's grammar, older vLLM) handle no references
        node = defs[node["$ref"].rsplit("/", 1)[-1]] | {k: v for k, v in node.items() if k != "$ref"}
    strict = {k: _strict(v, defs, choices) for k, v in node.items() if k not in (*_SCHEMA_NOISE, "properties")}
    if "properties" in node:
        properties = {name: _narrowed(_strict(p, defs, choices), choices.get(name))
                      for name, p in node["properties"].items()}
        strict |= {"properties": properties, "required": list(properties), "additionalProperties": False}
    return strict


def _narrowed(schema: dict[str, Any], values: Sequence[str] | None) -> dict[str, Any]:
    if values is None:
        return schema
    if "anyOf" in schema:
        return schema | {"anyOf": [_narrowed(s, values) for s in schema["anyOf"]]}
    if schema.get("type") == "array":
        return schema | {"items": _narrowed(schema["items"], values)}
    return schema | {"enum": list(values)} if schema.get("type") == "string" else schema


def clip_unit(value: float) -> float:
    """A model's confidence, kept within [0, 1]."""
    return round(min(1.0, max(0.0, value)), 4)


def _transient(error: BaseException) -> bool:
    import openai

    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, openai.APIConnectionError | InvalidAnswer | ValidationError)  # timeouts included


def _describe(error: BaseException | None) -> str:
    import openai

    # A status error's message may echo the request: the status code is enough for the log.
    return f"HTTP {error.status_code}" if isinstance(error, openai.APIStatusError) else str(error)


# ------------------------------------------------------------------ the client


class LLMClient:
    """One request at a time, usage counted, each request retried by tenacity."""

    def __init__(self, settings: Settings, client: openai.AsyncOpenAI | None = None) -> None:
        import openai

        if not settings.llm_base_url or not settings.llm_model:
            raise LLMUnavailable("LLM 引擎需要同时设置 VOC_LLM_BASE_URL 与 VOC_LLM_MODEL；"
                                 "不设置时请用默认的 --engine offline")
        self.settings = settings
        self.model = settings.llm_model
        base = client or openai.AsyncOpenAI(base_url=settings.llm_base_url,
                                            api_key=settings.llm_api_key or "not-needed")  # local servers need none
        self.client = base.with_options(max_retries=0, timeout=settings.llm_timeout_seconds)
        self.stats = LLMStats()
        self.prompts: dict[str, str] = {}  # agent → version of the prompt templates rendered
        self.sleep: Callable[[float], Any] = asyncio.sleep  # the backoff's sleep (tests record it)

    def system_prompt(self, agent: str, **values: Any) -> str:
        """The agent's system prompt, its template version recorded for run.json."""
        prompt = load_prompt(agent)
        self.prompts[agent] = prompt.version
        return prompt.render(**values)

    def usage(self) -> dict[str, Any]:
        """What the run state's `llm` entry carries: the counters and the prompt versions."""
        return self.stats.as_dict() | {"prompts": dict(sorted(self.prompts.items()))}

    async def aclose(self) -> None:
        await self.client.close()

    async def ask(self, name: str, system: str, user: str, schema: dict[str, Any],
                  parse: Callable[[str | None], T]) -> T | None:
        """One question, parsed; None once the retries are spent or the error is not transient."""
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system},
                                                      {"role": "user", "content": user}]
        answer: T | None = await self.retried(name, lambda: self._answer(messages, name, schema, parse))
        return answer

    async def ask_per_item(self, items: Sequence[X], *, key: Callable[[X], str], size: int, name: str,
                           prompt: Callable[[list[X]], tuple[str, str, dict[str, Any]]], model: type[V],
                           build: Callable[[V], T | None]) -> list[T | None]:
        """One request per batch of `size` items: `prompt` gives the batch's system prompt, user message
        and answer schema; each item of the answer is a `model` keyed by `key` of its input, which
        `build` turns into a result (None or InvalidAnswer: refused, that item only). Results are
        aligned with `items`, None where no valid item came back."""
        results: list[T | None] = []
        for start in range(0, len(items), size):
            batch = list(items[start : start + size])
            ids = [key(x) for x in batch]
            system, user, schema = prompt(batch)
            parse = partial(parse_items, model=model, ids=set(ids), build=build)
            answers = await self.ask(name, system, user, schema, parse)
            results += [(answers or {}).get(i) for i in ids]
        return results

    async def ask_per_voice(self, voices: list[VoiceInput], *, name: str, task: str,
                            prompt: Callable[[list[VoiceInput]], tuple[str, dict[str, Any]]],
                            row: Callable[[VoiceInput], dict[str, Any]], model: type[V],
                            build: Callable[[V], T | None]) -> list[T | None]:
        """`ask_per_item` for voices, `llm_batch_size` a request: `prompt` gives the batch's system
        prompt and answer schema (both narrowed to the batch's candidates), each voice is a `row` of
        the <voices> block."""

        def request(batch: list[VoiceInput]) -> tuple[str, str, dict[str, Any]]:
            system, schema = prompt(batch)
            self.stats.voices += len(batch)
            return system, voices_message(task, [row(v) for v in batch]), schema

        return await self.ask_per_item(voices, key=lambda v: v.id, size=self.settings.llm_batch_size, name=name,
                                       prompt=request, model=model, build=build)

    async def complete(self, messages: list[Any],
                       tools: list[ChatCompletionToolUnionParam] | None = None) -> ChatCompletionMessage | None:
        """The model's next message of a conversation (tool calls included), or None."""
        message: ChatCompletionMessage | None = await self.retried("chat", lambda: self._create(messages, tools=tools))
        return message

    async def retried(self, name: str, attempt: Callable[[], Any]) -> Any:
        """`await attempt()` under the retry policy; None (one failure counted) when it gives up."""
        import openai

        try:
            async for state in self._retrying(name):
                with state:
                    return await attempt()
        except (openai.OpenAIError, InvalidAnswer, ValidationError) as error:
            log.warning("%s: given up: %s", name, _describe(error))
        self.stats.failures += 1
        return None

    def _retrying(self, name: str) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.settings.llm_max_retries + 1),
            wait=wait_exponential(multiplier=self.settings.llm_backoff_seconds),  # backoff × 1, 2, 4, …
            retry=retry_if_exception(_transient), reraise=True, sleep=self.sleep,
            before_sleep=partial(self._count_retry, name))

    def _count_retry(self, name: str, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed: %s", name, state.attempt_number, _describe(error))

    async def _answer(self, messages: list[ChatCompletionMessageParam], name: str, schema: dict[str, Any],
                      parse: Callable[[str | None], T]) -> T:
        message = await self._create(messages, response_format=self._response_format(name, schema))
        return parse(message.content)

    async def _create(self, messages: list[Any], *, response_format: ResponseFormat | None = None,
                      tools: list[ChatCompletionToolUnionParam] | None = None) -> ChatCompletionMessage:
        options: dict[str, Any] = {"response_format": response_format} if response_format else {}
        if tools is not None:
            options["tools"] = tools
        self.stats.calls += 1
        response = await self.client.chat.completions.create(
            model=self.model, messages=messages, temperature=self.settings.llm_temperature, **options)
        usage = getattr(response, "usage", None)  # the client validates nothing: any field may be missing
        if usage is not None:
            self.stats.prompt_tokens += usage.prompt_tokens or 0
            self.stats.completion_tokens += usage.completion_tokens or 0
        choices = getattr(response, "choices", None)
        if not choices:
            raise InvalidAnswer("answer has no choices")
        message: ChatCompletionMessage = choices[0].message
        return message

    def _response_format(self, name: str, schema: dict[str, Any]) -> ResponseFormat:
        if self.settings.llm_response_format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        return {"type": "json_object"}
