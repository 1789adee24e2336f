"""分析 Analysis: cluster the period's negative voices into common problems, detect spikes, and score
severity × impact into priorities P1–P4.

Clustering follows the standard's 超级嵌入: each voice is embedded as an enhanced text that carries its
channel, business, segment and tag beside the words, so that voices about the same problem in the same
business land together even when worded differently.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeVar

import jieba
import numpy as np
from langgraph.runtime import Runtime
from pydantic import BaseModel
from sklearn.cluster import AgglomerativeClustering, KMeans

from agents.configuration import Configuration
from agents.context import RunContext, context_of, llm_stats
from agents.llm_client import InvalidAnswer, LLMClient, response_schema, validated
from agents.prompts import DATA_RULE, MAX_QUOTE_CHARS, MAX_QUOTES, as_data, block
from agents.schemas import VoiceAttribution, VoiceInput, VoiceTrace
from agents.state import RunState
from voc.contracts import Cluster, Priority, Sentiment, Signal
from voc.embeddings import EmbeddingCache
from voc.pii import mask_text
from voc.voice_queries import poisson_z

jieba.setLogLevel(logging.WARNING)

STOPWORDS = frozenset((
    "的", "了", "是", "我", "你", "他", "她", "们", "在", "有", "和", "就",
    "都", "也", "还", "又", "不", "没", "吧", "吗", "呢", "啊", "呀", "嗯",
    "哦", "那个", "这个", "就是", "就是说", "然后", "一个", "什么", "怎么",
    "为什么", "这样", "那样", "可以", "一下", "已经", "现在", "今天", "昨天",
    "一直", "还是", "但是", "所以", "因为", "如果", "自己", "你们", "我们", "他们",
    "这么", "那么", "这种", "客户", "来电", "反映", "表示", "要求", "银行",
    "某银行", "请问", "问题", "情况", "说", "要", "能", "会", "让", "给", "被",
    "把", "对", "从", "到", "跟", "去", "来", "上", "下", "里", "后", "前",
    "次", "个", "些", "点", "多", "少", "太", "很", "真", "好", "再", "才",
    "只", "等", "啥", "呗", "哈", "吧", "嘛", "啦", "喂", "您好", "你好",
    "谢谢", "麻烦", "处理", "办理", "客服", "工单", "转办",
))
MASK_TOKENS = ("手机号", "身份证号", "银行卡号", "邮箱", "姓名")
VULNERABLE_SEGMENTS = ("老年客户",)


def enhanced_text(voice: VoiceInput, trace: VoiceTrace) -> str:
    return (f"渠道：{voice.channel}|业务：{voice.business or '未填写'}|客群：{voice.segment}|"
            f"问题：{voice.text}|标签：{trace.tag}")


def cluster_labels(vectors: np.ndarray, config: Configuration) -> np.ndarray:
    """Deterministic clusters of unit vectors (rows must already be in a canonical order): average
    linkage under a cosine cut; large inputs are first split into coarse k-means groups."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    if len(vectors) <= config.coarse_group_size:
        return _agglomerate(vectors, config.cluster_distance)
    groups = math.ceil(len(vectors) / config.coarse_group_size)
    coarse = KMeans(n_clusters=groups, n_init=1, random_state=0).fit_predict(vectors)
    labels = np.zeros(len(vectors), dtype=int)
    offset = 0
    for group in range(groups):
        members = np.flatnonzero(coarse == group)
        if len(members) == 0:
            continue
        local = _agglomerate(vectors[members], config.cluster_distance) if len(members) > 1 else np.zeros(1, int)
        labels[members] = local + offset
        offset += int(local.max()) + 1
    return _merge_across_groups(labels, vectors, config.cluster_distance)


def _merge_across_groups(labels: np.ndarray, vectors: np.ndarray, distance: float) -> np.ndarray:
    """A coarse split can cut one problem in two; join fine clusters whose centroids are within the cut."""
    ids = np.unique(labels)
    centroids = _normalise(np.vstack([vectors[labels == i].mean(axis=0) for i in ids]))
    merged = _agglomerate(centroids, distance) if len(ids) > 1 else np.zeros(1, dtype=int)
    mapping = dict(zip(ids.tolist(), merged.tolist(), strict=True))
    return np.asarray([mapping[int(x)] for x in labels], dtype=int)


def _agglomerate(vectors: np.ndarray, distance: float) -> np.ndarray:
    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    return np.asarray(model.fit_predict(vectors))


def settle_small_groups(labels: np.ndarray, vectors: np.ndarray, config: Configuration) -> np.ndarray:
    """Groups below the minimum size join the most similar cluster if close enough, else become
    outliers (-1). Returns labels renumbered by (size desc, first member)."""
    sizes = Counter(labels.tolist())
    big = sorted(label for label, size in sizes.items() if size >= config.min_cluster_size)
    result = np.full(len(labels), -1, dtype=int)
    if not big:
        return result
    centroids = _normalise(np.vstack([vectors[labels == b].mean(axis=0) for b in big]))
    for index, label in enumerate(labels):
        if sizes[label] >= config.min_cluster_size:
            result[index] = big.index(label)
            continue
        similarity = centroids @ vectors[index]
        best = int(np.argmax(similarity))
        if similarity[best] >= config.attach_similarity:
            result[index] = best
    return _canonical(result)


def _canonical(labels: np.ndarray) -> np.ndarray:
    order = sorted({int(x) for x in labels if x >= 0},
                   key=lambda c: (-int((labels == c).sum()), int(np.flatnonzero(labels == c)[0])))
    mapping = {old: new for new, old in enumerate(order)}
    return np.asarray([mapping.get(int(x), -1) for x in labels], dtype=int)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def keywords_by_cluster(texts_by_cluster: list[list[str]], top_n: int = 5) -> list[list[str]]:
    """Class-based TF-IDF over jieba tokens: words frequent in one cluster and rare in the others."""
    counts = [Counter(w for t in texts for w in tokens(t)) for texts in texts_by_cluster]
    document_frequency = Counter(w for c in counts for w in c)
    total = len(counts)
    result = []
    for count in counts:
        size = sum(count.values()) or 1
        scored = sorted(count, key=lambda w: (-(count[w] / size) * math.log(1 + total / document_frequency[w]), w))
        result.append(scored[:top_n])
    return result


def tokens(text: str) -> list[str]:
    """Content words of a voice for naming: jieba words without stop words, masks and numbers."""
    for token in MASK_TOKENS:
        text = text.replace(f"[{token}]", " ")
    return [w for w in jieba.lcut(text) if (len(w) >= 2 and w not in STOPWORDS and not w.isdigit()
            and not w.isascii()) or (w.isascii() and len(w) >= 3 and w.isalpha() and w.lower() not in {"the", "and"})]


@dataclass
class Member:
    voice: VoiceInput
    trace: VoiceTrace
    attribution: VoiceAttribution
    vector: np.ndarray


def severity_of(members: list[Member]) -> int:
    """Emotion intensity, blocked goals, regulator/media threats and vulnerable segments."""
    n = len(members)
    level = float(np.mean([m.trace.intensity for m in members]))
    if sum(Signal.THREAT in m.trace.signals for m in members) / n >= 0.1:
        level += 1
    if sum(Signal.BLOCKED in m.trace.signals for m in members) / n >= 0.3:
        level += 1
    if sum(m.voice.segment in VULNERABLE_SEGMENTS for m in members) / n >= 0.2:
        level += 1  # KD-002: vulnerable customers raise severity by at least one
    return int(max(1, min(5, round(level))))


def impact_of(size: int, negatives: int, rising: bool, complaints: int, regulator: int) -> int:
    """Volume share of the period's negative voices, growth, and how far up the funnel it reached."""
    share = size / max(negatives, 1)
    level = 5 if share >= 0.1 else 4 if share >= 0.05 else 3 if share >= 0.02 else 2 if share >= 0.01 else 1
    level += int(rising) + int(complaints >= 3 or regulator >= 1)
    return min(5, level)


Label = TypeVar("Label", bound=str)


def _band(score: int) -> int:
    """4–5 high (2), 3 middle (1), 1–2 low (0), as in KD-001 / KD-002."""
    return 2 if score >= 4 else 1 if score == 3 else 0


def priority_of(severity: int, impact: int) -> Priority:
    """The severity × impact matrix of KD-001: high×high P1; high×mid or mid×high P2; high×low,
    mid×mid or low×high P3; everything lower P4."""
    return Priority.from_rank(5 - (_band(severity) + _band(impact)))


def _majority(values: list[Label]) -> Label:
    return sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def build_cluster(number: int, members: list[Member], keywords: list[str], previous_count: int,
                  negatives: int) -> Cluster:
    vectors = np.vstack([m.vector for m in members])
    centre = _normalise(vectors.mean(axis=0, keepdims=True))[0]
    closeness = vectors @ centre
    representative = [members[i].voice.id for i in np.argsort(-closeness, kind="stable")[:3]]
    size = len(members)
    z = poisson_z(size, previous_count)
    rising = size > previous_count and z >= 1.96
    complaints = sum(m.voice.funnel_tier >= 5 for m in members)
    regulator = sum(m.voice.funnel_tier >= 6 for m in members)
    severity = severity_of(members)
    impact = impact_of(size, negatives, rising, complaints, regulator)
    tag = _majority([m.trace.tag for m in members])
    return Cluster(
        cluster_id=f"C{number + 1:03d}", label=f"{tag.split('>')[-1]}：{'、'.join(keywords[:3])}",
        keywords=keywords, size=size, voice_ids=[m.voice.id for m in members],
        owner_department=_majority([m.attribution.owner_department for m in members]),
        dimension=_majority([m.trace.dimension for m in members]),
        tag=tag, severity=severity, impact=impact, priority=priority_of(severity, impact), current_count=size,
        previous_count=previous_count, rising=rising,
        growth_z=round(z, 3), representative_voice_ids=representative,
        distinct_customers=len({m.voice.customer_id or m.voice.id for m in members}), complaint_count=complaints,
        segments=dict(Counter(m.voice.segment for m in members)),
        channels=dict(Counter(m.voice.channel for m in members)),
        mean_intensity=round(float(np.mean([m.trace.intensity for m in members])), 2),
        threat_count=sum(Signal.THREAT in m.trace.signals for m in members),
        blocked_count=sum(Signal.BLOCKED in m.trace.signals for m in members))


def previous_counts(centroids: np.ndarray, previous_vectors: np.ndarray, attach_similarity: float) -> list[int]:
    """Previous-period negative voices counted against the cluster they are nearest to, if close enough."""
    counts = [0] * len(centroids)
    if len(previous_vectors) == 0 or len(centroids) == 0:
        return counts
    similarity = previous_vectors @ centroids.T
    for row in similarity:
        best = int(np.argmax(row))
        if row[best] >= attach_similarity:
            counts[best] += 1
    return counts


Triple = tuple[VoiceInput, VoiceTrace, VoiceAttribution]


def negative_members(voices: list[dict[str, Any]], traces: list[dict[str, Any]],
                     attributions: list[dict[str, Any]] | None) -> list[Triple]:
    by_id = {v["id"]: VoiceInput.model_validate(v) for v in voices}
    owners = {a["voice_id"]: VoiceAttribution.model_validate(a) for a in attributions or []}
    chosen = []
    for item in traces:
        trace = VoiceTrace.model_validate(item)
        if trace.sentiment is Sentiment.NEGATIVE:
            owner = owners.get(trace.voice_id) or VoiceAttribution(voice_id=trace.voice_id, owner_department="",
                                                                   owner_confidence=0, needs_review=True)
            chosen.append((by_id[trace.voice_id], trace, owner))
    return sorted(chosen, key=lambda m: m[0].id)  # canonical order: same clusters whatever the input order


def analyse_period(state: RunState, config: Configuration, cache: EmbeddingCache,
                   report: Any = None) -> tuple[list[Cluster], list[str]]:
    current = negative_members(state.get("voices", []), state.get("traces", []), state.get("attributions", []))
    if not current:
        return [], []  # a period without a negative voice has no problem to cluster
    previous = negative_members(state.get("previous_voices", []), state.get("previous_traces", []), None)
    vectors = cache.embed([enhanced_text(v, t) for v, t, _ in current], "passage", progress=report)
    before = cache.embed([enhanced_text(v, t) for v, t, _ in previous], "passage", progress=report)
    labels = settle_small_groups(cluster_labels(vectors, config), vectors, config)
    members = [Member(v, t, a, vectors[i]) for i, (v, t, a) in enumerate(current)]
    groups = [[m for m, label in zip(members, labels, strict=True) if label == c] for c in range(labels.max() + 1)]
    keywords = keywords_by_cluster([[m.voice.text for m in g] for g in groups])
    centroids = _normalise(np.vstack([np.vstack([m.vector for m in g]).mean(axis=0) for g in groups])) \
        if groups else np.zeros((0, vectors.shape[1] if len(vectors) else 384))
    earlier = previous_counts(centroids, before, config.attach_similarity)
    clusters = [build_cluster(i, g, keywords[i], earlier[i], len(current)) for i, g in enumerate(groups)]
    outliers = [m.voice.id for m, label in zip(members, labels, strict=True) if label < 0]
    return clusters, outliers


async def analyse(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    context = context_of(runtime)
    started = time.perf_counter()
    traces = state.get("traces", []) + state.get("previous_traces", [])
    negatives = sum(t["sentiment"] == Sentiment.NEGATIVE for t in traces)
    context.report("分析", 0, negatives)
    cache = EmbeddingCache(context.settings.embedding_cache_path)
    clusters, outliers = analyse_period(state, context.config, cache, lambda n: context.report("分析", n))
    if context.llm is not None:
        texts = {v["id"]: v["text"] for v in state.get("voices", [])}
        clusters = [await _named_by_llm(context.llm, c, texts) for c in clusters]
    return {"clusters": [c.model_dump(mode="json") for c in clusters], "outlier_ids": outliers,
            "timings": {"analysis": round(time.perf_counter() - started, 3)}, "llm": llm_stats(context, state)}


# ------------------------------------------------------------------ the LLM engine's 分析: naming a cluster

MAX_LABEL_CHARS = 20
MAX_KEYWORDS = 12


class LabelAnswer(BaseModel):
    label: str


async def _named_by_llm(llm: LLMClient, cluster: Cluster, texts: dict[str, str]) -> Cluster:
    """The model's name for the cluster, or the keyword label when it gave no usable one."""
    label = await llm_cluster_name(llm, cluster.keywords, [texts[i] for i in cluster.representative_voice_ids],
                                   cluster.tag)
    return cluster.model_copy(update={"label": label}) if label else cluster


async def llm_cluster_name(llm: LLMClient, keywords: list[str], quotes: list[str], tag: str) -> str | None:
    user = "\n".join([
        "请为下面这组客户声音所反映的共性问题起一个简短的中文名称，输出 JSON。", DATA_RULE,
        block("cluster", {"tag": tag, "keywords": [as_data(k, 40) for k in keywords[:MAX_KEYWORDS]]}),
        block("voices", [as_data(q, MAX_QUOTE_CHARS) for q in quotes[:MAX_QUOTES]])])
    return await llm.ask("cluster_label", llm.system_prompt("analysis"), user, response_schema(LabelAnswer), _label)


def _label(content: str | None) -> str:
    """A short plain name: quotes and spaces trimmed; anything long or with markup is refused."""
    label = re.sub(r"\s+", "", validated(content, LabelAnswer).label).strip("「」“”\"'《》【】")
    if not label or len(label) > MAX_LABEL_CHARS or "<" in label or ">" in label:
        raise InvalidAnswer(f"label {label!r} is empty, too long or not plain text")
    return mask_text(label)
