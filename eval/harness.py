"""`voc eval`: ingest a labelled set into a fresh store, run the graph exactly as `voc run` does,
score every agent against the labels beside the baselines, write the scorecard, apply the gate."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agents.analysis import Triple, problem_vectors
from agents.configuration import Configuration
from agents.problem_text import Boilerplate
from agents.runner import run_and_write
from agents.schemas import VoiceAttribution, VoiceInput, VoiceTrace
from eval.baselines import bertopic_clusters, tfidf_logreg
from eval.datasets import DATASETS_DIR, Dataset, load_dataset
from eval.metrics import (
    analysis_scores,
    application_scores,
    attribution_scores,
    clustering_scores,
    keyword_hit_rate,
    majority_cluster,
    tracing_scores,
)
from eval.problem_metrics import problem_scores
from voc.config import Settings
from voc.contracts import RunOutputs, RunSummary, Sentiment, VoiceResult, read_voices
from voc.embeddings import EmbeddingCache
from voc.ingest import ColumnMap, Ingestor
from voc.knowledge import load_boilerplate, load_taxonomy
from voc.knowledge_base import KnowledgeBase
from voc.learning.history import import_history
from voc.learning.history_mapping import HistoryMapping
from voc.models import LOCAL_TZ
from voc.pii import mask_text
from voc.reviews import Correction, ReviewDesk
from voc.storage import Store

THRESHOLDS = DATASETS_DIR.parent / "thresholds.yaml"
FRESH = ("voc.db", "voc.db-wal", "voc.db-shm", "checkpoints.sqlite", "checkpoints.sqlite-wal",
         "checkpoints.sqlite-shm", "runs", "rejects")


def eval_settings(base: Settings, dataset: Dataset) -> Settings:
    """A fresh store per evaluation; the vector store and embedding cache are kept between runs
    (they only hold the knowledge base and vectors, never labels)."""
    folder = base.resolved_data_dir / "eval" / dataset.name
    for name in FRESH:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return base.model_copy(update={"data_dir": folder, "database_url": None})


def ingest(settings: Settings, dataset: Dataset) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{dataset.name}.jsonl"
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in dataset.rows) + "\n", encoding="utf-8")
        report = Ingestor(Store(settings.resolved_database_url), settings).ingest_file(path)
    return {"rows": report.rows, "stored": report.stored, "duplicate": report.duplicate, "rejected": report.rejected}


@dataclass(frozen=True)
class HistorySource:
    """A bank's labelled history learned before the run (`voc eval --history FILE --mapping PATH`)."""

    path: Path
    mapping: HistoryMapping


def learn_history(settings: Settings, history: HistorySource) -> dict[str, Any]:
    """Import the history into the evaluation's fresh store, so the learned layer trains on it."""
    report = import_history(Store(settings.resolved_database_url), history.path, history.mapping,
                            ColumnMap.load(settings.column_map), settings.ingest_batch_size)
    return {"file": mask_text(history.path.name), "mapping": mask_text(history.mapping.path.name),
            "rows": report.rows, "learned": report.learned, "skipped": dict(report.skipped)}


async def evaluate(dataset: Dataset, engine: str, out_dir: Path, base: Settings,
                   review: bool = False, history: HistorySource | None = None) -> dict[str, Any]:
    if dataset.current is None:
        raise ValueError(f"dataset {dataset.name} has no dated voices")
    settings = eval_settings(base, dataset)
    settings.ensure_dirs()
    ingested = ingest(settings, dataset)
    learned_history = learn_history(settings, history) if history is not None else None
    kb = KnowledgeBase(settings)
    kb.load()  # trains the learned layer on the knowledge base and, when given, the history
    run_id = f"eval-{dataset.name}-{engine}-{datetime.now(LOCAL_TZ):%Y%m%dT%H%M%S}"
    run_dir, summary = await run_and_write(settings, out_dir / "run", period=dataset.current, engine=engine,
                                           run_id=run_id)
    outputs = RunOutputs.load(run_dir)
    predicted = {v.id: v for v in outputs.voices}
    clusters, proposals = outputs.clusters, outputs.proposals
    gold = {i: label for i, label in dataset.labels.items() if i in predicted}
    card: dict[str, Any] = {
        "dataset": dataset.name, "engine": engine, "period": summary.period.model_dump(mode="json"),
        "ingested": ingested,
        "history": learned_history, "learned_sources": kb.learned.sources,
        "coverage": _coverage(dataset, gold),
        "attribution": attribution_scores(gold, predicted), "tracing": tracing_scores(gold, predicted),
        "analysis": {**clustering_scores(gold, predicted), "outlier_rate": summary.outlier_rate,
                     "clusters": len(clusters)},
        "cost": _cost(summary),
        "baselines": _baselines(dataset),
    }
    card["baselines"]["bertopic_clustering"] = bertopic_baseline(settings, dataset, gold, predicted)
    card["baselines"]["bertopic_clustering"]["agent_seconds"] = summary.timings.get("analysis")
    # The same work as BERTopic's, on vectors already made: the agent without its embedding step.
    card["baselines"]["bertopic_clustering"]["agent_clustering_seconds"] = round(
        summary.timings.get("analysis", 0.0) - summary.timings.get("analysis_embedding", 0.0), 3)
    if dataset.issues:
        card["analysis"] |= analysis_scores(dataset.issues, gold, predicted, clusters)
        card["problems"] = problem_scores(dataset.issues, dataset.incidents, gold, predicted, clusters, proposals)
        texts = {str(r["id"]): str(r.get("text", "")) for r in dataset.rows}
        card["application"] = application_scores(dataset.issues, gold, predicted, clusters, proposals,
                                                 summary.period, lambda c: kb.get_case(c) is not None, texts)
    if review:
        card["review"] = await review_effect(settings, dataset, engine, out_dir, predicted)
    card["gate"] = check_gate(card, engine)
    write_scorecard(card, out_dir)
    return card


REVIEWER = "eval-analyst"


async def review_effect(settings: Settings, dataset: Dataset, engine: str, out_dir: Path,
                        before: dict[str, VoiceResult]) -> dict[str, Any]:
    """自动初筛 + 人工复核, measured: run the week before, let an analyst (the gold labels) correct
    the voices it flagged for review, then run the current week again. The current week's voices
    are never corrected, so any change there comes from the corrections as labelled examples."""
    assert dataset.current is not None
    previous = dataset.current.previous()
    last_week, _ = await run_and_write(settings, out_dir / "review-previous", period=previous, engine=engine,
                                       run_id=f"{out_dir.name}-review-previous")
    flagged = [v for v in read_voices(last_week) if v.needs_review]
    kb = KnowledgeBase(settings)
    desk = ReviewDesk(kb.store, kb.matrix, kb.taxonomy)
    corrected = 0
    for voice in flagged:
        label = dataset.labels.get(voice.id, {})
        fields = {"owner_department": label.get("owner"), "tag": label.get("tag"),
                  "sentiment": label.get("sentiment")}
        if any(fields.values()):
            desk.correct(voice.id, Correction.model_validate(fields), REVIEWER, "gold label")
            corrected += 1
    run_dir, _ = await run_and_write(settings, out_dir / "review-current", period=dataset.current, engine=engine,
                                     run_id=f"{out_dir.name}-review-current")
    after = {v.id: v for v in read_voices(run_dir)}
    gold = {i: label for i, label in dataset.labels.items() if i in after}
    return {"previous_week": previous.label, "flagged": len(flagged), "corrected": corrected,
            "without": _review_scores(gold, before), "with": _review_scores(gold, after)}


def _review_scores(gold: dict[str, dict[str, Any]], predicted: dict[str, VoiceResult]) -> dict[str, Any]:
    attribution, tracing = attribution_scores(gold, predicted), tracing_scores(gold, predicted)
    return {"owner_accuracy": attribution["owner_accuracy"], "tag_accuracy": tracing["tag"]["accuracy"],
            "dimension_accuracy": tracing["dimension"]["accuracy"],
            "sentiment_accuracy": tracing["sentiment"]["accuracy"],
            "needs_review_rate": attribution["needs_review_rate"]}


def _coverage(dataset: Dataset, gold: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What was scored and what was skipped (labels of voices outside the period or not stored)."""
    labelled = {name: dataset.labelled(name) for name in ("owner", "dimension", "tag", "sentiment", "issue")}
    scored = {name: sum(1 for g in gold.values() if g.get(name)) for name in labelled}
    return {"voices_in_run": len(gold), "labelled": labelled, "scored": scored,
            "skipped": {k: labelled[k] - scored[k] for k in labelled},
            "unlabelled_metrics": [k for k, v in labelled.items() if not v]}


def _cost(summary: RunSummary) -> dict[str, Any]:
    voices = max(summary.counts.voices, 1)
    llm = summary.llm
    return {"wall_seconds": summary.timings["wall"], "timings": summary.timings,
            "llm_per_1000_voices": {k: round(llm.get(k, 0) * 1000 / voices, 1)
                                    for k in ("calls", "prompt_tokens", "completion_tokens")},
            "fallbacks": llm.get("fallbacks", 0)}


def _baselines(dataset: Dataset) -> dict[str, Any]:
    texts = {str(r["id"]): str(r.get("text", "")) for r in dataset.rows}
    result = {}
    for name in ("dimension", "owner"):
        ids = [i for i, label in dataset.labels.items() if label.get(name)]
        result[f"tfidf_logreg_{name}"] = tfidf_logreg([texts[i] for i in ids],
                                                      [dataset.labels[i][name] for i in ids])
    return result


def knowledge_inputs(settings: Settings) -> tuple[Boilerplate, list[str]]:
    """What the analysis agent reads from the knowledge server: the boilerplate floor and the data
    dictionary's example voices (read here from the files, as the eval owns no MCP session)."""
    listed = load_boilerplate(settings.knowledge_dir / "boilerplate.yaml")
    examples = [e for tag in load_taxonomy(settings.taxonomy_path).tags for e in tag.examples]
    return Boilerplate(tuple(listed.phrases), tuple(listed.fillers)), examples


def run_triples(store: Store, predicted: dict[str, VoiceResult], ids: list[str]) -> list[Triple]:
    """Stored voices with the run's labels, as the analysis agent sees them."""
    triples: list[Triple] = []
    for voice_id in ids:
        voice = store.get_voice(voice_id)
        assert voice is not None
        item = VoiceInput(id=voice.id, text=voice.text, channel=voice.channel.value,
                          business=voice.business.value if voice.business else None,
                          segment=voice.customer_segment.value, funnel_tier=int(voice.funnel_tier),
                          created_at=voice.created_at.isoformat())
        trace = VoiceTrace(voice_id=voice.id, sentiment=predicted[voice_id].sentiment, intensity=1,
                           dimension=predicted[voice_id].dimension, tag=predicted[voice_id].tag, root_cause="")
        owner = VoiceAttribution(voice_id=voice.id, owner_department=predicted[voice_id].owner_department,
                                 owner_confidence=1.0, needs_review=False)
        triples.append((item, trace, owner))
    return triples


def bertopic_baseline(settings: Settings, dataset: Dataset, gold: dict[str, dict[str, Any]],
                      predicted: dict[str, VoiceResult]) -> dict[str, Any]:
    """BERTopic given what the analysis agent is given — the run's negative voices, as the same
    vectors (cleaned text composed with the run's tags and owners) — and scored with the same
    functions: a gold problem voice the run did not call negative is an outlier for both."""
    ids = sorted(i for i, v in predicted.items() if v.sentiment is Sentiment.NEGATIVE)
    triples = run_triples(Store(settings.resolved_database_url), predicted, ids)
    vectors, texts = problem_vectors(triples, Configuration(), EmbeddingCache(settings.embedding_cache_path),
                                     *knowledge_inputs(settings))
    if len(texts) < 10:
        return {"skipped": "fewer than 10 problem voices"}
    result = bertopic_clusters(texts, vectors)
    if result is None:
        return {"skipped": "BERTopic is not installed: pip install -e '.[topics]'"}
    topics, words, seconds = result
    as_run = {**predicted, **{i: predicted[i].model_copy(update={"cluster_id": f"T{t:03d}" if t >= 0 else None})
                              for i, t in zip(ids, topics, strict=True)}}
    names = {f"T{t:03d}": "".join(w) for t, w in dict(zip(topics, words, strict=True)).items() if t >= 0}
    scores = clustering_scores(gold, as_run)
    matched = {issue["id"]: majority_cluster(issue["id"], gold, as_run) for issue in dataset.issues}
    keywords = keyword_hit_rate(dataset.issues, matched, names) if dataset.issues else None
    return {**scores, "outlier_rate": round(sum(t < 0 for t in topics) / len(topics), 4), "clusters": len(names),
            "keyword_hit_rate": keywords, "seconds": round(seconds, 2)}


def check_gate(card: dict[str, Any], engine: str, path: Path = THRESHOLDS) -> dict[str, Any]:
    """Thresholds per engine and dataset, keyed by dotted scorecard paths: a number is a minimum,
    `{max: n}` a maximum (for counts where fewer is better, such as duplicate proposals)."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    limits = (spec.get(card["dataset"]) or {}).get(engine) or {}
    failures = []
    for key, limit in limits.items():
        value = _at(card, key)
        if isinstance(limit, dict):
            if value is None or value > limit["max"]:
                failures.append({"metric": key, "value": value, "maximum": limit["max"]})
        elif value is None or value < limit:
            failures.append({"metric": key, "value": value, "minimum": limit})
    return {"checked": len(limits), "passed": not failures, "failures": failures}


def write_scorecard(card: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scorecard.json").write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
    (out_dir / "scorecard.md").write_text(render_markdown(card), encoding="utf-8")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.1%}" if isinstance(value, float) and value <= 1 else str(value)


def render_markdown(card: dict[str, Any]) -> str:
    a, t, n = card["attribution"], card["tracing"], card["analysis"]
    base = card["baselines"]
    lines = [f"# Scorecard — {card['dataset']} ({card['engine']} engine, {card['period']['label']})", "",
             f"Voices in the run: {card['coverage']['voices_in_run']}; skipped labels: {card['coverage']['skipped']}",
             "", _learned_line(card),
             "", "## Agents beside baselines", "",
             "| measure | agent | baseline (TF-IDF + LR, 5-fold CV; BERTopic) |", "|---|---|---|",
             f"| owner accuracy | {_fmt(a['owner_accuracy'])} | {_fmt(base['tfidf_logreg_owner'].get('accuracy'))} |",
             f"| owner accuracy (acceptable) | {_fmt(a['owner_accuracy_acceptable'])} | — |",
             f"| dimension accuracy | {_fmt(t['dimension']['accuracy'])} | "
             f"{_fmt(base['tfidf_logreg_dimension'].get('accuracy'))} |",
             f"| dimension macro-F1 | {_fmt(t['dimension']['macro_f1'])} | "
             f"{_fmt(base['tfidf_logreg_dimension'].get('macro_f1'))} |",
             f"| clustering ARI | {n.get('ari')} | BERTopic: {base['bertopic_clustering'].get('ari', '—')} |",
             f"| clustering V-measure | {n.get('v_measure')} | BERTopic: "
             f"{base['bertopic_clustering'].get('v_measure', '—')} |",
             f"| outlier rate | {_fmt(n['outlier_rate'])} | BERTopic: "
             f"{_fmt(base['bertopic_clustering'].get('outlier_rate'))} |",
             f"| clustering seconds | {base['bertopic_clustering'].get('agent_clustering_seconds')} "
             f"(whole analysis agent {base['bertopic_clustering'].get('agent_seconds')}) | "
             f"BERTopic: {base['bertopic_clustering'].get('seconds', '—')} |",
             f"| BERTopic note | | {base['bertopic_clustering'].get('skipped', 'same voices, same vectors')} |",
             "", "## Attribution", "", f"- needs-review rate {_fmt(a['needs_review_rate'])}; accuracy of the rest "
             f"{_fmt(a['accuracy_without_review'])}",
             f"- per-owner recall: {json.dumps(a['per_owner_recall'], ensure_ascii=False)}",
             "- review curve (owner confidence threshold → share sent to review, accuracy of the voices accepted "
             "automatically): " + "; ".join(f"{p['threshold']:.2f} → {_fmt(p['review_rate'])}, "
                                            f"{_fmt(p['accuracy_accepted'])}" for p in a["review_curve"]),
             "", "## Tracing", "",
             f"- dimension: accuracy {_fmt(t['dimension']['accuracy'])}, acceptable "
             f"{_fmt(t['dimension']['accuracy_acceptable'])}, macro-F1 {_fmt(t['dimension']['macro_f1'])}",
             f"- tag accuracy {_fmt(t['tag']['accuracy'])} (L1>L2 {_fmt(t['tag']['l2_accuracy'])})",
             f"- sentiment accuracy {_fmt(t['sentiment']['accuracy'])}, macro-F1 {_fmt(t['sentiment']['macro_f1'])}, "
             f"negative recall {_fmt(t['sentiment']['negative_recall'])}",
             f"- confusion (rows gold, columns predicted; {' '.join(t['dimension']['confusion']['labels'])}): "
             f"{t['dimension']['confusion']['matrix']}",
             "", "## Analysis", "",
             f"- ARI {n.get('ari')}, NMI {n.get('nmi')}, V-measure {n.get('v_measure')}; outlier rate "
             f"{_fmt(n['outlier_rate'])}; {n['clusters']} clusters"]
    if "keyword_hit_rate" in n:
        lines += [f"- cluster-name keyword hit rate {_fmt(n['keyword_hit_rate'])}; issues found "
                  f"{n['issues_found']}/{n['issues']}",
                  f"- spikes: precision {_fmt(n['spike_precision'])}, recall {_fmt(n['spike_recall'])}",
                  f"- priority exact {_fmt(n['priority_exact'])}, within one {_fmt(n['priority_within_one'])}; "
                  f"expected P1 in top 3: {n['p1_in_top3']}"]
    if "problems" in card:
        q = card["problems"]
        lines += ["", "## Problems, proposals and incidents", "",
                  f"- fragmentation {_fmt(q['fragmentation'])}; duplicate proposals {q['duplicate_proposals']}; "
                  f"incident recall {_fmt(q['incident_recall'])}; measure relevance {_fmt(q['measure_relevance'])}"]
    if "application" in card:
        p = card["application"]
        lines += ["", "## Application", "",
                  f"- {p['proposals']} proposals; P1/P2 coverage {_fmt(p['p1_p2_coverage'])}; owner correct "
                  f"{_fmt(p['owner_correct'])}",
                  f"- evidence valid {_fmt(p['evidence_valid'])}; cited cases exist {_fmt(p['cited_cases_exist'])}; "
                  f"grounded {_fmt(p['grounded'])}"]
    if "review" in card:
        r = card["review"]
        lines += ["", "## With the review queue (自动初筛 + 人工复核)", "",
                  f"- {r['corrected']} of {r['flagged']} voices flagged in {r['previous_week']} corrected by the "
                  "analyst (gold labels); this week's voices are not corrected", "",
                  "| measure (this week) | without | with |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(r['without'][k])} | {_fmt(r['with'][k])} |" for k in r["without"]]
    c, g = card["cost"], card["gate"]
    lines += ["", "## Cost", "", f"- wall {c['wall_seconds']} s; LLM per 1,000 voices {c['llm_per_1000_voices']}",
              "", "## Gate", "", f"- {'passed' if g['passed'] else 'FAILED'} ({g['checked']} thresholds)"]
    lines += [f"  - {f['metric']}: {f['value']} " + (f"< {f['minimum']}" if "minimum" in f else f"> {f['maximum']}")
              for f in g["failures"]]
    return "\n".join(lines) + "\n"


def _learned_line(card: dict[str, Any]) -> str:
    sources = ", ".join(f"{k} {v}" for k, v in (card.get("learned_sources") or {}).items())
    history = card.get("history")
    used = (f"history {history['file']} learned ({history['learned']} of {history['rows']} rows; mapping "
            f"{history['mapping']})" if history else "no labelled history")
    return f"Learned layer trained on: {sources or '—'}; {used}"


SIDE_BY_SIDE = (("owner accuracy", "attribution.owner_accuracy"),
                ("owner accuracy (acceptable)", "attribution.owner_accuracy_acceptable"),
                ("review rate", "attribution.needs_review_rate"),
                ("accuracy not sent to review", "attribution.accuracy_without_review"),
                ("dimension accuracy", "tracing.dimension.accuracy"), ("tag accuracy", "tracing.tag.accuracy"),
                ("sentiment macro-F1", "tracing.sentiment.macro_f1"),
                ("sentiment negative recall", "tracing.sentiment.negative_recall"), ("clustering ARI", "analysis.ari"),
                ("BERTopic ARI (same vectors)", "baselines.bertopic_clustering.ari"),
                ("clustering seconds (vectors made)", "baselines.bertopic_clustering.agent_clustering_seconds"),
                ("BERTopic seconds", "baselines.bertopic_clustering.seconds"),
                ("outlier rate", "analysis.outlier_rate"), ("fragmentation", "problems.fragmentation"),
                ("duplicate proposals", "problems.duplicate_proposals"),
                ("incident recall", "problems.incident_recall"), ("measure relevance", "problems.measure_relevance"),
                ("priority exact", "analysis.priority_exact"), ("priority within one", "analysis.priority_within_one"),
                ("P1 in top 3", "analysis.p1_in_top3"), ("proposals", "application.proposals"),
                ("grounded", "application.grounded"), ("history rows learned", "history.learned"),
                ("gate", "gate.passed"))


def _at(card: dict[str, Any], path: str) -> Any:
    value: Any = card
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(path: str, value: Any) -> str:
    if isinstance(value, dict):  # P1 in top 3: how many of the planted P1 problems
        return f"{sum(bool(v) for v in value.values())}/{len(value)}"
    if isinstance(value, float) and ("seconds" in path or path.endswith("ari")):
        return f"{value:g}"  # seconds and ARI are not shares
    return _fmt(value)


def write_side_by_side(cards: list[dict[str, Any]], out_dir: Path) -> str:
    """One table, one column per dataset: the tuned set beside the held-out one."""
    names = [f"{c['dataset']} ({c['engine']})" for c in cards]
    lines = ["# Scorecard — side by side", "", "| measure | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(cards)]
    lines += [f"| {label} | " + " | ".join(_cell(path, _at(c, path)) for c in cards) + " |"
              for label, path in SIDE_BY_SIDE]
    text = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "scorecard.md").write_text(text, encoding="utf-8")
    return text


def score_outside(base: Settings, evaluated: str, out_dir: Path) -> str:
    """Sentiment on the outside corpora, judged with the knowledge base and learned layer of a
    dataset just evaluated (already loaded and trained there: nothing is embedded again)."""
    from eval.outside import OUTSIDE_SENTIMENT, outside_markdown, outside_sentiment_scores

    settings = base.model_copy(update={"data_dir": base.resolved_data_dir / "eval" / evaluated, "database_url": None})
    scores = outside_sentiment_scores(KnowledgeBase(settings), load_dataset(OUTSIDE_SENTIMENT))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{OUTSIDE_SENTIMENT}.json").write_text(json.dumps(scores, ensure_ascii=False, indent=2),
                                                       encoding="utf-8")
    text = outside_markdown(scores)
    (out_dir / f"{OUTSIDE_SENTIMENT}.md").write_text(text, encoding="utf-8")
    return text
