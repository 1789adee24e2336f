"""Sentiment on real outside text: the held-out sample of public review corpora (eval/datasets/
outside_sentiment), judged by the learned layer and by the lexicon alone, per corpus and in all.

These corpora label 正面/负面 only, so a 中性 answer counts as wrong and macro-F1 is taken over the
two labels that exist. The full weekly run is not needed for this: only sentiment is labelled."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sklearn.metrics import f1_score

from eval.datasets import Dataset
from voc.contracts import Sentiment
from voc.kb_ranking import OwnerQuery
from voc.knowledge_base import KnowledgeBase
from voc.lexicon import analyse
from voc.models import Channel

OUTSIDE_SENTIMENT = "outside_sentiment"
BATCH = 500


def outside_sentiment_scores(kb: KnowledgeBase, dataset: Dataset) -> dict[str, Any]:
    rows = [r for r in dataset.rows if dataset.labels.get(str(r["id"]), {}).get("sentiment")]
    truth = [dataset.labels[str(r["id"])]["sentiment"] for r in rows]
    queries = [OwnerQuery(text=str(r["text"])[:5000], channel=_channel(r.get("channel"))) for r in rows]
    learned: list[str] = []
    for start in range(0, len(queries), BATCH):
        learned += [
            str(j.sentiment) if j.sentiment else "" for j in kb.judge_sentiment_many(queries[start : start + BATCH])
        ]
    lexicon = [str(analyse(str(r["text"]), str(r.get("channel") or "")).sentiment) for r in rows]
    corpora = [str((r.get("metadata") or {}).get("corpus", "all")) for r in rows]
    return {
        "dataset": dataset.name,
        "n": len(rows),
        "learned": _scores(truth, learned, corpora),
        "lexicon": _scores(truth, lexicon, corpora),
    }


def _scores(truth: list[str], guess: list[str], corpora: list[str]) -> dict[str, Any]:
    result = _binary(truth, guess)
    per: dict[str, list[int]] = defaultdict(list)
    for i, corpus in enumerate(corpora):
        per[corpus].append(i)
    result["per_corpus"] = {
        c: _binary([truth[i] for i in idx], [guess[i] for i in idx]) for c, idx in sorted(per.items())
    }
    return result


def _binary(truth: list[str], guess: list[str]) -> dict[str, Any]:
    labels = sorted(set(truth))
    negative = [g == Sentiment.NEGATIVE for t, g in zip(truth, guess, strict=True) if t == Sentiment.NEGATIVE]
    return {
        "n": len(truth),
        "accuracy": round(sum(t == g for t, g in zip(truth, guess, strict=True)) / len(truth), 4) if truth else None,
        "macro_f1": round(float(f1_score(truth, guess, labels=labels, average="macro", zero_division=0)), 4)
        if truth
        else None,
        "negative_recall": round(sum(negative) / len(negative), 4) if negative else None,
        "neutral_share": round(sum(g == Sentiment.NEUTRAL for g in guess) / len(guess), 4) if guess else None,
    }


def _channel(value: object) -> Channel | None:
    try:
        return Channel(str(value)) if value else None
    except ValueError:
        return None


def outside_markdown(scores: dict[str, Any]) -> str:
    lines = [
        f"## Sentiment on outside text ({scores['dataset']}, {scores['n']} voices, 正面/负面 only)",
        "",
        "| corpus | learned macro-F1 | learned negative recall | lexicon macro-F1 | lexicon negative recall |",
        "|---|---|---|---|---|",
    ]
    learned, lexicon = scores["learned"], scores["lexicon"]
    for corpus in [*learned["per_corpus"], "all"]:
        a = learned if corpus == "all" else learned["per_corpus"][corpus]
        b = lexicon if corpus == "all" else lexicon["per_corpus"][corpus]
        lines.append(
            f"| {corpus} | {a['macro_f1']} | {a['negative_recall']} | {b['macro_f1']} | {b['negative_recall']} |"
        )
    return "\n".join(lines) + "\n"
