"""Chat for VOC analysts: a LangGraph graph per conversation (thread = session), answering from the
MCP tools with evidence (voice ids, proposal ids). Every step and tool call is streamed as it happens.

Offline engine: intent + slots (agents/chat_intents.py), then the tools of that question type, then
an answer composed from the tool results. Anything else gets an honest "cannot answer offline" with
the supported question types.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agents.chat_intents import Slots, Understanding, intent_name, supported_questions, understand, understood_label
from agents.chat_llm import ChatLLM
from agents.toolbox import Toolbox
from voc.contracts import OPEN_STATUSES, Engine, ProblemView, ProposalStatus
from voc.lifecycle import ProposalView
from voc.pii import mask_text

QUOTE_CHARS = 60
MAX_ITEMS = 5  # quotes per answer
MAX_LISTED = 10  # problems or proposals listed in one answer; the answer says when it lists fewer than it counts


class ChatState(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], operator.add]
    understanding: dict[str, Any]
    engine: str


@dataclass
class ChatContext:
    toolbox: Toolbox
    llm: ChatLLM | None = None


@dataclass
class Answer:
    text: str
    voice_ids: list[str]
    proposal_ids: list[str]


def _emit(event: dict[str, Any]) -> None:
    """Stream an event; a tool call (ours or the LLM engine's) gets its `label` in Chinese here."""
    if event.get("type") == "tool" and "label" not in event:
        event = {**event, "label": tool_label(event["tool"], event.get("arguments") or {})}
    with contextlib.suppress(RuntimeError):  # outside a streaming run (direct calls in tests)
        get_stream_writer()(event)


async def traced(toolbox: Toolbox, server: str, tool: str, label: str | None = None,
                 **arguments: Any) -> dict[str, Any]:
    """A tool call, streamed as a step before it runs (`label`: its own words, when the arguments say
    less than its purpose)."""
    shown = {k: v for k, v in arguments.items() if v is not None}
    _emit({"type": "tool", "server": server, "tool": tool, "arguments": shown}
          | ({"label": f"工具 {tool} → {label}"} if label else {}))
    return await toolbox.call(server, tool, **arguments)


# ---------------------------------------------------------------- tool calls in the analyst's words

TOOL_WORDS = {
    "search_voices": "检索客户声音", "get_voice": "读取客户原话", "count_voices": "统计客户声音",
    "compare_periods": "对比本期与上期的客户声音", "sample_voices": "抽样客户声音",
    "get_corrections": "读取人工复核结果", "get_service_matrix": "读取服务矩阵（各责任部门）",
    "get_taxonomy": "读取问题标签体系", "search_knowledge": "检索知识库", "candidate_owners": "推荐责任部门",
    "candidate_owners_batch": "批量推荐责任部门", "suggest_tags": "推荐问题标签",
    "suggest_tags_batch": "批量推荐问题标签",
    "search_cases": "检索历史整改案例", "get_case": "读取整改案例", "list_proposals": "查询整改建议",
    "get_proposal": "读取整改建议", "list_problems": "查询问题清单", "evaluate_proposal": "评估整改效果",
    "match_open_proposal": "查找未结的同类建议",
}
GROUP_WORDS = {"channel": "渠道", "business": "业务", "day": "日", "week": "周", "segment": "客群",
               "funnel_tier": "漏斗层级", "source_type": "来源"}
TIER_WORDS = {1: "机器人咨询", 2: "人工咨询", 3: "线上及意见反馈", 4: "队伍反馈", 5: "投诉", 6: "监管投诉"}
SILENT = {"offset", "cursor", "after", "include_duplicates"}  # paging and switches: nothing an analyst asked


def _week_words(week: str) -> str:
    year, _, number = week.partition("-W")
    return f"{year}年第{int(number)}周" if number.isdigit() else week


def _argument_words(key: str, value: Any) -> str:
    if key in SILENT or value is None or value is False or value == "":
        return ""
    if key == "week":
        return _week_words(str(value))
    if key in ("query", "text", "keywords"):
        words = "、".join(value) if isinstance(value, list) else str(value)
        return f"关键词“{words[:20]}{'…' if len(words) > 20 else ''}”"
    if key == "tag":
        return f"标签“{value}”"
    if key == "group_by":
        return f"按{GROUP_WORDS.get(str(value), str(value))}"
    if key == "funnel_tier":
        return f"漏斗第{value}层（{TIER_WORDS.get(int(value), '')}）"
    if key == "rising_only":
        return "仅显著上升"
    if key in ("limit", "top_k"):
        # A page size of a whole list (list_proposals, list_problems) is no choice of the analyst's.
        return f"前 {value} 条" if isinstance(value, int) and value < 100 else ""
    if isinstance(value, str):
        return value  # ids, owner, business, segment, channel, status, priority: already the analyst's words
    return f"{key}={value}"


def tool_label(tool: str, arguments: dict[str, Any]) -> str:
    """工具 search_voices → 检索客户声音（2026年第47周，手机银行，关键词“登录”，前 5 条）."""
    shown = dict(arguments)
    words = []
    if shown.get("date_from") or shown.get("date_to"):
        words.append(f"{shown.pop('date_from', None) or '…'} 至 {shown.pop('date_to', None) or '…'}")
    words += [w for k, v in shown.items() if (w := _argument_words(k, v))]
    return f"工具 {tool} → {TOOL_WORDS.get(tool, '调用数据工具')}" + (f"（{'，'.join(words)}）" if words else "")


async def latest_week(toolbox: Toolbox) -> str | None:
    counts = await traced(toolbox, "tickets", "count_voices", label="确定最近一周有数据的周次", group_by="week",
                          date_from="2000-01-01", date_to=date.today().isoformat())
    return max((r["key"] for r in counts["rows"]), default=None)


async def understand_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    toolbox = runtime.context.toolbox
    message = state["messages"][-1]["content"]
    matrix = await traced(toolbox, "knowledge", "get_service_matrix")
    week = await latest_week(toolbox)
    earlier = state.get("understanding")
    previous = Understanding(earlier["intent"], earlier["score"], Slots.model_validate(earlier["slots"])) \
        if earlier else None
    result = understand(message, [d["name"] for d in matrix["departments"]], week, previous)
    plain = {"intent": result.intent, "score": result.score, "slots": result.slots.model_dump(mode="json"),
             "latest_week": week}
    _emit({"type": "step", "name": "理解问题", "label": understood_label(result), "detail": plain})
    return {"understanding": plain}


async def answer_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    context, plain = runtime.context, state["understanding"]
    engine, answer = Engine.OFFLINE, None
    if state.get("engine") == Engine.LLM and context.llm is not None:
        _emit({"type": "step", "name": "大模型调用工具作答", "detail": {"model": context.llm.model},
               "label": f"大模型（{context.llm.model}）调用只读工具作答"})
        conversation = [m for m in state["messages"] if m["role"] in ("user", "assistant")]
        reply = await context.llm.answer(context.toolbox, conversation, _emit)
        engine = Engine.LLM if reply is not None else Engine.FALLBACK
        answer = Answer(reply.text, reply.voice_ids, reply.proposal_ids) if reply is not None else None
    if answer is None:
        answer = await offline_answer(context.toolbox, plain)
    _emit({"type": "answer", "text": answer.text, "voice_ids": answer.voice_ids, "proposal_ids": answer.proposal_ids,
           "intent": plain["intent"], "engine": engine})
    return {"messages": [{"role": "assistant", "content": answer.text, "voice_ids": answer.voice_ids,
                          "proposal_ids": answer.proposal_ids}]}


async def offline_answer(toolbox: Toolbox, plain: dict[str, Any]) -> Answer:
    handler = HANDLERS.get(plain["intent"] or "")
    if handler is None:
        return unsupported()
    _emit({"type": "step", "name": "查询数据", "label": f"查询数据：{intent_name(plain['intent'])}",
           "detail": {"intent": plain["intent"]}})
    return await handler(toolbox, Slots.model_validate(plain["slots"]), plain.get("latest_week"))


# ---------------------------------------------------------------- answers per question type

def unsupported() -> Answer:
    listed = "\n".join(f"{i}. {q}" for i, q in enumerate(supported_questions(), start=1))
    return Answer(text=f"离线模式下无法回答这个问题。目前支持以下问题类型：\n{listed}", voice_ids=[], proposal_ids=[])


def _week_of(slots: Slots, latest: str | None) -> str | None:
    if slots.period and "~" not in slots.period.label:
        return slots.period.label
    return latest


def _listed(total: int, unit: str, order: str) -> str:
    """The end of a count's sentence: all of them follow, or only the first MAX_LISTED (and it says so)."""
    return "：" if total <= MAX_LISTED else f"，列出{order}的前 {MAX_LISTED} {unit}："


def _period_args(slots: Slots, latest: str | None) -> dict[str, Any]:
    if slots.period is not None:
        return {"date_from": slots.period.start.isoformat(), "date_to": slots.period.end.isoformat()}
    return {"week": latest}


async def _quote(toolbox: Toolbox, voice_id: str) -> str:
    voice = await traced(toolbox, "tickets", "get_voice", voice_id=voice_id)
    return f"[{voice_id}]「{mask_text(voice['text'])[:QUOTE_CHARS]}」"


async def answer_rising(toolbox: Toolbox, slots: Slots, latest: str | None) -> Answer:
    week = _week_of(slots, latest)
    if week is None:
        return Answer("还没有任何客户声音数据。", [], [])
    problems = await traced(toolbox, "proposals", "list_problems", week=week, rising_only=True,
                            owner_department=slots.owner, limit=500)
    if problems["run_id"] is None:
        return Answer(f"{week} 还没有周度运行结果，无法判断问题是否上升。请先运行 `voc run --week {week}`。", [], [])
    if not problems["items"]:
        return Answer(f"{week} 没有较上周显著上升的问题（运行 {problems['run_id']}）。", [], [])
    items = [ProblemView.model_validate(item) for item in problems["items"]]
    head = f"{week} 较上周显著上升的问题共 {len(items)} 个{_listed(len(items), '个', '优先级最高')}"
    lines, voices, proposals = [head], [], []
    for number, c in enumerate(items[:MAX_LISTED], start=1):
        channels = "、".join(k for k, _ in sorted(c.channels.items(), key=lambda kv: -kv[1])[:2])
        segments = "、".join(k for k, _ in sorted(c.segments.items(), key=lambda kv: -kv[1])[:2])
        quote = await _quote(toolbox, c.representative_voice_ids[0])
        voices.append(c.representative_voice_ids[0])
        cited = f"，对应建议 {c.proposal_id}" if c.proposal_id else ""
        proposals += [c.proposal_id] if c.proposal_id else []
        lines.append(f"{number}. {c.label}（{c.priority}，{c.owner_department}）："
                     f"本周 {c.current_count} 条，上周 {c.previous_count} 条（z={c.growth_z:.1f}）。"
                     f"为什么：根因维度「{c.dimension}」、"
                     f"标签「{c.tag}」，集中在{channels}渠道、{segments}客群，关键词{'、'.join(c.keywords[:4])}"
                     f"{cited}。客户原话：{quote}")
    return Answer("\n".join(lines), voices, proposals)


async def answer_owner_proposals(toolbox: Toolbox, slots: Slots, latest: str | None) -> Answer:
    listed = await traced(toolbox, "proposals", "list_proposals", owner_department=slots.owner, limit=500)
    views = [ProposalView.model_validate(item) for item in listed["items"]]
    pending = [p for p in views if p.status in OPEN_STATUSES]
    pending.sort(key=lambda p: (not p.overdue, p.due_date, p.proposal_id))
    who = slots.owner or "各部门"
    if not pending:
        return Answer(f"{who}目前没有待处理的整改建议。", [], [])
    overdue = sum(p.overdue for p in pending)
    shown = pending[:MAX_LISTED]
    lines = [f"{who}待处理的整改建议共 {len(pending)} 条（其中逾期 {overdue} 条）"
             f"{_listed(len(pending), '条', '最紧迫')}"]
    voices = []
    for p in shown:
        late = "，已逾期" if p.overdue else ""
        evidence = p.proposal.evidence_voice_ids[:2]
        voices += evidence
        lines.append(f"- {p.proposal_id}（{p.priority}，{p.status}，到期 {p.due_date}{late}，"
                     f"{p.owner_department}）：{p.problem} 证据：{'、'.join(evidence)}")
    return Answer("\n".join(lines), voices, [p.proposal_id for p in shown])


async def answer_quotes(toolbox: Toolbox, slots: Slots, latest: str | None) -> Answer:
    period = _period_args(slots, latest)
    attempts = [(slots.business, slots.problem), (None, slots.problem), (slots.business, slots.problem[:1])]
    for business, words in attempts:
        page = await traced(toolbox, "tickets", "search_voices", **period, limit=MAX_ITEMS,
                            business=business, segment=slots.segment, query=" ".join(words) or None)
        if page["total"]:
            break
    topic = "、".join([*([slots.business.value] if slots.business else []), *slots.problem]) or "全部"
    when = slots.period_words or period.get("week") or ""
    if not page["total"]:
        return Answer(f"{when}没有找到与「{topic}」相关的客户原话。", [], [])
    lines = [f"{when}与「{topic}」相关的客户声音共 {page['total']} 条，以下为 {len(page['items'])} 条原话（已脱敏）："]
    for v in page["items"]:
        lines.append(f"- [{v['id']}]「{mask_text(v['text'])[:QUOTE_CHARS]}」（{v['channel']}，{v['created_at'][:10]}）")
    return Answer("\n".join(lines), [v["id"] for v in page["items"]], [])


async def answer_segment_change(toolbox: Toolbox, slots: Slots, latest: str | None) -> Answer:
    if slots.segment is None:
        return Answer("请说明要看哪个客群：老年客户、对公、私人银行或个人。", [], [])
    period = _period_args(slots, latest)
    segment = slots.segment.value
    tiers = await traced(toolbox, "tickets", "compare_periods", group_by="funnel_tier", segment=segment, **period)
    business = await traced(toolbox, "tickets", "compare_periods", group_by="business", segment=segment, **period)
    complaint = [r for r in tiers["rows"] if r["key"] in ("5", "6")]
    now, before = sum(r["current"] for r in complaint), sum(r["previous"] for r in complaint)
    rising = [r for r in business["rows"] if r["change"] > 0]
    rising.sort(key=lambda r: (-r["change"], r["key"]))
    samples = await traced(toolbox, "tickets", "search_voices", segment=segment, funnel_tier=5, limit=3, **period)
    lines = [f"{segment}：本期声音 {tiers['current_total']} 条，上期 {tiers['previous_total']} 条"
             f"（{_growth(tiers['current_total'], tiers['previous_total'])}）；其中投诉及监管转送 {now} 条，"
             f"上期 {before} 条（{_growth(now, before)}）。"]
    if rising:
        lines.append("增加最多的业务：" + "、".join(
            f"{r['key']} +{r['change']}{'（显著）' if r['significant'] else ''}" for r in rising[:3]) + "。")
    lines += [f"- [{v['id']}]「{mask_text(v['text'])[:QUOTE_CHARS]}」" for v in samples["items"]]
    return Answer("\n".join(lines), [v["id"] for v in samples["items"]], [])


def _growth(now: int, before: int) -> str:
    return "上期为 0" if before == 0 else f"环比 {now / before - 1:+.0%}"


async def answer_effect(toolbox: Toolbox, slots: Slots, latest: str | None) -> Answer:
    listed = await traced(toolbox, "proposals", "list_proposals", limit=500)
    words = slots.problem or ([slots.business.value] if slots.business else [])
    matches = [p for p in listed["items"] if words and all(w in p["problem"] + p["tag"] for w in words)] or \
              [p for p in listed["items"] if any(w in p["problem"] + p["tag"] for w in words)]
    if not matches:
        return Answer(f"没有找到与「{'、'.join(words) or '该问题'}」相关的整改建议。", [], [])
    shown = matches[:3]
    more = "：" if len(matches) == len(shown) else f"，列出前 {len(shown)} 条："
    lines = [f"与「{'、'.join(words)}」相关的整改建议共 {len(matches)} 条{more}"]
    for p in shown:
        lines.append(await _effect_line(toolbox, p))
    return Answer("\n".join(lines), [], [p["proposal_id"] for p in shown])


async def _effect_line(toolbox: Toolbox, proposal: dict[str, Any]) -> str:
    head = f"- {proposal['proposal_id']}（{proposal['owner_department']}，{proposal['status']}）"
    effect = proposal.get("effect")
    if effect is None and proposal["status"] == ProposalStatus.DONE:
        try:
            effect = await traced(toolbox, "proposals", "evaluate_proposal", proposal_id=proposal["proposal_id"])
        except Exception as exc:  # the tool says why it cannot judge yet
            return f"{head}：{ProposalStatus.DONE}，但暂时无法评估——{str(exc).split(': ', 1)[-1]}"
    if effect is None:
        return f"{head}：尚未完成整改，还不能评估效果。"
    passed = effect["verdict"] == ProposalStatus.VERIFIED
    verdict = "有效（显著下降且达到目标）" if passed else ProposalStatus.FAILED.value
    return (f"{head}：{verdict}。基线 {effect['baseline_mean']} 条/周 → 整改后 {effect['after_mean']} 条/周，"
            f"下降 {effect['reduction']:.0%}（目标 {effect['required_reduction']:.0%}），p={effect['p_value']:.4f}；"
            f"整改后复发 {effect['recurrences']} 条。")


HANDLERS: dict[str, Callable[[Toolbox, Slots, str | None], Awaitable[Answer]]] = {
    "rising": answer_rising, "owner_proposals": answer_owner_proposals, "quotes": answer_quotes,
    "segment_change": answer_segment_change, "effect": answer_effect,
}


def build_chat_graph() -> StateGraph[ChatState, ChatContext, ChatState, ChatState]:
    builder = StateGraph(ChatState, context_schema=ChatContext)
    builder.add_node("understand", understand_node)
    builder.add_node("answer", answer_node)
    builder.add_edge(START, "understand")
    builder.add_edge("understand", "answer")
    builder.add_edge("answer", END)
    return builder
