"""Sample hotel, food-delivery and shopping reviews of a github.com/SophonPlus/ChineseNlpCorpus snapshot into a
training file and a disjoint held-out dataset, deterministically: `python eval/outside_sentiment.py [GIT_DIR]`."""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import subprocess
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from voc.ingest_rows import normalize_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GIT_DIR = Path("/work/.mirror/SophonPlus+ChineseNlpCorpus/repo/.git")
TRAIN = ROOT / "knowledge" / "sentiment" / "outside_train.jsonl"
PART_A = ROOT / "eval" / "datasets" / "outside_sentiment" / "part_a.jsonl"
CORPORA = {  # source → (file in the snapshot, short name used in ids)
    "ChnSentiCorp_htl_all": ("datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv", "htl"),
    "waimai_10k": ("datasets/waimai_10k/waimai_10k.csv", "waimai"),
    "online_shopping_10_cats": ("datasets/online_shopping_10_cats/online_shopping_10_cats.zip", "shop"),
}
SEED, MAX_CHARS, TRAIN_PER_CLASS, EVAL_PER_CLASS = 20260302, 200, 1500, 500
SENTIMENT = {"1": "正面", "0": "负面"}
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")  # a review that gives someone's phone number
# The voice fields of a held-out row: one fixed time (one ISO week), a feedback channel, no customer.
VOICE = {"created_at": "2026-03-02T10:00:00", "channel": "APP意见反馈", "source_type": "客户",
         "customer_id": None, "customer_segment": "未知", "business": "其他"}

Item = tuple[str, str]  # (category, text)


def read_rows(git_dir: Path, path: str) -> list[dict[str, str]]:
    data = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{path}"],
                          capture_output=True, check=True).stdout
    if path.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = archive.read(next(n for n in archive.namelist() if n.endswith(".csv")))
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def load(git_dir: Path) -> dict[str, dict[str, list[Item]]]:
    """Per source and label, the usable reviews in file order. Dropped: empty and over-long texts, texts with
    a mobile number, repeats (the same text after the ingestor's normalisation of width, case, spaces and
    punctuation, across all three corpora) and texts labelled both ways."""
    raw: list[tuple[str, str, str, str, str]] = []  # source, label, category, text, key
    for source, (path, _) in CORPORA.items():
        for row in read_rows(git_dir, path):
            text = " ".join((row.get("review") or "").replace("\ufeff", "").split())
            key = normalize_text(text)
            if key and len(text) <= MAX_CHARS and row.get("label") in SENTIMENT and not MOBILE.search(text):
                raw.append((source, row["label"], row.get("cat") or "", text, key))
    labels: dict[str, set[str]] = defaultdict(set)
    for _, label, _, _, key in raw:
        labels[key].add(label)
    seen: set[str] = set()
    usable: dict[str, dict[str, list[Item]]] = {s: {"1": [], "0": []} for s in CORPORA}
    for source, label, category, text, key in raw:
        if key not in seen and len(labels[key]) == 1:
            seen.add(key)
            usable[source][label].append((category, text))
    return usable


def spread(items: list[Item], n: int) -> tuple[list[Item], list[Item]]:
    """n items taken in turn from each category (a small category gives what it has), and the rest."""
    queues: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        queues[item[0]].append(item)
    taken: list[Item] = []
    while len(taken) < n and any(queues.values()):
        for category in sorted(queues):
            if queues[category] and len(taken) < n:
                taken.append(queues[category].pop(0))
    return taken, [item for category in sorted(queues) for item in queues[category]]


def sample(git_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng, train, held_out = random.Random(SEED), list[dict[str, Any]](), list[dict[str, Any]]()
    for source, by_label in load(git_dir).items():
        short = CORPORA[source][1]
        for label, items in sorted(by_label.items(), reverse=True):  # positives first
            rng.shuffle(items)
            part_a, rest = spread(items, EVAL_PER_CLASS)  # the held-out sample first, at full size
            fit, _ = spread(rest, TRAIN_PER_CLASS)
            sentiment = SENTIMENT[label]
            train += [{"id": f"OST-{short}-{len(train) + n:05d}", "text": text, "sentiment": sentiment,
                       "source": source} for n, (_, text) in enumerate(fit, 1)]
            for category, text in part_a:
                meta = {"corpus": source, **({"category": category} if category else {})}
                held_out.append({"id": f"OSA-{short}-{len(held_out) + 1:05d}", **VOICE, "text": text,
                                 "metadata": meta, "labels": {"sentiment": sentiment}})
            print(f"{source} {sentiment}: {len(items)} usable, {len(part_a)} held out, {len(fit)} training")
    return train, held_out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Sample the outside sentiment corpora.")
    parser.add_argument("git_dir", nargs="?", type=Path, default=DEFAULT_GIT_DIR,
                        help="bare git dir of the ChineseNlpCorpus snapshot")
    train, held_out = sample(parser.parse_args().git_dir)
    write_jsonl(TRAIN, train)
    write_jsonl(PART_A, held_out)
    print(f"wrote {len(train)} training rows to {TRAIN} and {len(held_out)} held-out rows to {PART_A}")


if __name__ == "__main__":
    main()
