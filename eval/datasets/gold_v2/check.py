"""Consistency checks for the gold_v2 set.

Run: PYTHONPATH=. .venv/bin/python eval/datasets/gold_v2/check.py   (exit code 1 on any error)
"""
from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
WEEKS = {"previous": ("2026-11-09", "2026-11-15"), "current": ("2026-11-16", "2026-11-22")}
HARD = {"asr", "ticket", "regulator", "review", "forum", "traditional", "mixed_en", "elderly", "sarcasm",
        "multi_issue", "pii", "injection", "emotional", "boilerplate"}
SENTIMENT = {"praise": "正面", "consult": "中性"}


def allowed_values():
    try:
        sys.path.insert(0, str(ROOT))
        from voc.models import Business, Channel, Segment, SourceType
        return ({c.value for c in Channel} - {"其他渠道"}, {s.value for s in Segment},
                {b.value for b in Business}, {s.value for s in SourceType})
    except ImportError:  # the lists as of voc/models.py
        return ({"智能客服机器人", "电话客服", "在线客服", "APP意见反馈", "投诉工单", "监管转送", "社交媒体",
                 "网点意见簿", "满意度回访", "员工反馈"},
                {"个人", "老年客户", "对公", "私人银行", "未知"},
                {"信用卡", "借记卡", "手机银行", "网上银行", "理财", "贷款", "转账汇款", "对公业务", "网点服务",
                 "客服服务", "其他"},
                {"客户", "前台员工", "中后台员工", "第三方"})


def main() -> int:
    errors: list[str] = []
    err = errors.append
    taxonomy = {t["path"]: t["dimension"] for t in
                yaml.safe_load((ROOT / "knowledge/taxonomy.yaml").read_text(encoding="utf-8"))["tags"]}
    departments = {d["name"] for d in
                   yaml.safe_load((ROOT / "knowledge/service_matrix.yaml").read_text(encoding="utf-8"))["departments"]}
    channels, segments, businesses, sources = allowed_values()
    spec = yaml.safe_load((HERE / "issues.yaml").read_text(encoding="utf-8"))
    issues = {i["id"]: i for i in spec["issues"]}

    rows = []
    for part in sorted(HERE.glob("part_*.jsonl")):
        for n, line in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                err(f"{part.name}:{n} does not parse: {e}")

    ids = collections.Counter(r.get("id") for r in rows)
    errors += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    texts = collections.Counter(r.get("text") for r in rows)
    errors += [f"duplicate text {t[:30]!r}" for t, c in texts.items() if c > 1]
    counts: collections.defaultdict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    kinds: collections.Counter[str] = collections.Counter()
    styles: collections.Counter[str] = collections.Counter()
    for r in rows:
        rid, lab = r.get("id"), r.get("labels") or {}
        for key in ("id", "created_at", "channel", "source_type", "customer_id", "customer_segment", "business",
                    "text"):
            if key not in r:
                err(f"{rid}: missing {key}")
        if not str(rid).startswith("H2-"):
            err(f"{rid}: id prefix")
        day = str(r.get("created_at", ""))[:10]
        week = next((w for w, (a, b) in WEEKS.items() if a <= day <= b), None)
        if week is None:
            err(f"{rid}: created_at {r.get('created_at')} outside the two weeks")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", str(r.get("created_at"))):
            err(f"{rid}: created_at format")
        for key, ok in (("channel", channels), ("customer_segment", segments), ("business", businesses),
                        ("source_type", sources)):
            if r.get(key) not in ok:
                err(f"{rid}: {key} {r.get(key)!r} not allowed")
        issue = lab.get("issue")
        kind = issue if issue in ("praise", "consult", "single") else "common"
        kinds[kind] += 1
        if kind == "common":
            if issue not in issues:
                err(f"{rid}: unknown issue {issue}")
            else:
                counts[str(issue)][str(week)] += 1
                spec_i = issues[issue]
                for key in ("owner", "dimension", "tag"):
                    if lab.get(key) != spec_i.get(key):
                        err(f"{rid}: {key} {lab.get(key)} differs from {issue}'s {spec_i.get(key)}")
        owner = lab.get("owner")
        if owner not in departments:
            err(f"{rid}: owner {owner!r} not a department")
        for o in lab.get("owner_ok") or []:
            if o not in departments or o == owner:
                err(f"{rid}: owner_ok {o!r}")
        sentiment = lab.get("sentiment")
        if sentiment not in ("负面", "中性", "正面"):
            err(f"{rid}: sentiment {sentiment!r}")
        if sentiment != SENTIMENT.get(str(issue), "负面"):
            err(f"{rid}: sentiment {sentiment} for {issue}")
        tag, dim, dims_ok = lab.get("tag"), lab.get("dimension"), lab.get("dims_ok") or []
        if issue in ("praise", "consult"):
            if tag or dim or dims_ok:
                err(f"{rid}: {issue} carries a tag or dimension")
        else:
            if tag not in taxonomy:
                err(f"{rid}: tag {tag!r} not in the taxonomy")
            elif taxonomy[tag] != dim:
                err(f"{rid}: tag {tag} has dimension {taxonomy[tag]}, label says {dim}")
            if dim in dims_ok or any(d not in "人机物法环" or len(d) != 1 for d in dims_ok):
                err(f"{rid}: dims_ok {dims_ok}")
        for h in lab.get("hard") or []:
            if h not in HARD:
                err(f"{rid}: hard marker {h!r}")
            styles[h] += 1
        if "pii" in (lab.get("hard") or []) and not re.search(r"\d{11,}", r["text"]):
            err(f"{rid}: pii marker without a number")

    for gid, i in issues.items():
        got = {"previous": counts[gid]["previous"], "current": counts[gid]["current"]}
        if got != i["counts"]:
            err(f"{gid}: issues.yaml counts {i['counts']} but the voices give {got}")
        if i.get("priority") not in ("P1", "P2", "P3", "P4"):
            err(f"{gid}: priority {i.get('priority')}")
        if i["owner"] not in departments or any(o not in departments for o in i.get("owner_ok", [])):
            err(f"{gid}: owner")
        if taxonomy.get(i["tag"]) != i["dimension"]:
            err(f"{gid}: tag/dimension")
        if not 2 <= len(i.get("keywords", [])) <= 4:
            err(f"{gid}: keywords")
        p, c = i["counts"]["previous"], i["counts"]["current"]
        if i["rising"] and not (c >= 8 and c >= 4 * max(p, 1)):
            err(f"{gid}: rising but {p} -> {c}")
        if not i["rising"] and c > 1.5 * max(p, 1):
            err(f"{gid}: not rising but {p} -> {c} (ambiguous)")
    if not 20 <= len(issues) <= 26:
        err(f"{len(issues)} issues (want 20-26)")
    prios = collections.Counter(i["priority"] for i in issues.values())
    if prios["P1"] < 3 or prios["P4"] < 2:
        err(f"priorities {dict(prios)}")

    incidents = spec.get("incidents") or []
    if len(incidents) < 3:
        err("fewer than 3 incidents")
    for x in incidents:
        if len(x.get("issues", [])) < 3:
            err(f"{x['id']}: fewer than 3 symptom issues")
        for g in x.get("issues", []):
            if g not in issues:
                err(f"{x['id']}: unknown issue {g}")
            elif issues[g].get("incident") != x["id"]:
                err(f"{g}: incident field does not point back to {x['id']}")
        if x.get("owner") not in departments:
            err(f"{x['id']}: owner")
        if not WEEKS["previous"][0] <= str(x.get("onset")) <= WEEKS["current"][1]:
            err(f"{x['id']}: onset {x.get('onset')} outside the two weeks")
    for gid, i in issues.items():
        if i.get("incident") and not any(gid in x["issues"] for x in incidents):
            err(f"{gid}: incident {i['incident']} does not list it")

    if len(rows) < 520:
        err(f"only {len(rows)} rows")
    weeks = collections.Counter(
        next(w for w, (a, b) in WEEKS.items() if a <= r["created_at"][:10] <= b) for r in rows)
    print(f"rows {len(rows)}; per week {dict(weeks)}; per kind {dict(kinds)}")
    print(f"issues {len(issues)}; priorities {dict(sorted(prios.items()))}; rising "
          f"{sorted(g for g, i in issues.items() if i['rising'])}; incidents {[x['id'] for x in incidents]}")
    print(f"styles {dict(styles.most_common())}")
    for error in errors:
        print("ERROR", error)
    print("OK" if not errors else f"{len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
