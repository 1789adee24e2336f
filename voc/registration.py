"""What a weekly run may write into the closed loop, checked before anything is written.

`register_run` is a writing MCP tool: any client that reaches it could otherwise file a P1 for an
owner outside the matrix, put markup into a proposal's text, or wipe a week's problem volumes.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from voc.contracts import Cluster, Proposal
from voc.lifecycle import LifecycleError

Contract = TypeVar("Contract", bound=BaseModel)

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# Proposal prose is written by the product; a tag-like `<x`, `</`, `<!` or `<?` has no place in it.
_MARKUP_RE = re.compile(r"<\s*[A-Za-z/!?]|javascript\s*:", re.IGNORECASE)
# Terminal markup (rich's [link=…]) in a proposal would become a clickable link in `voc proposals list`.
_RICH_RE = re.compile(r"\[/?(link|bold|red|on |#)", re.IGNORECASE)


def has_markup(text: str) -> bool:
    """HTML, a script URL or terminal link markup: nothing the product's own prose contains."""
    return bool(_MARKUP_RE.search(text) or _RICH_RE.search(text))


_WEEK_OR_RANGE = re.compile(r"^\d{4}-W\d{2}$|^\d{4}-\d{2}-\d{2}~\d{4}-\d{2}-\d{2}$")


def is_period_label(label: str) -> bool:
    """An ISO week (2026-W47) or a run's date-range label (2026-11-01~2026-11-14)."""
    return bool(_WEEK_OR_RANGE.match(label))


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "evidence" for s in _strings(v, f"{path}.{k}".strip("."))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


class Registration(NamedTuple):
    proposals: list[Proposal]
    clusters: list[Cluster]


def check_registration(run_id: str, week: str, proposals: list[dict[str, Any]], clusters: list[dict[str, Any]],
                       volumes: dict[str, int], owners: set[str], tags: set[str]) -> Registration:
    """The run's proposals and clusters, validated against the output contract; LifecycleError (in
    plain Chinese) unless the run and week are well formed, every proposal fits the contract and the
    service matrix, every cluster it names is in the run, every tag is in the taxonomy, and the
    volumes are owner|tag counts. Nothing is written before."""
    if not re.match(_ID, run_id):
        raise LifecycleError(f"运行编号“{run_id[:60]}”不合规")
    if not _WEEK_OR_RANGE.match(week):
        raise LifecycleError(f"“{week[:40]}”不是周次（2026-W47）或日期区间")
    checked = Registration([], [])
    for index, raw in enumerate(clusters, start=1):
        cluster = _validated(Cluster, raw, f"第 {index} 个问题")
        if cluster.tag not in tags:
            raise LifecycleError(f"问题 {cluster.cluster_id[:20]} 的分类标签不在分类体系中")
        checked.clusters.append(cluster)
    cluster_ids = {c.cluster_id for c in checked.clusters}
    for index, raw in enumerate(proposals, start=1):
        proposal = _validated(Proposal, raw, f"第 {index} 条建议")
        for field, value in (("proposal_id", proposal.proposal_id), ("cluster_id", proposal.cluster_id)):
            if not re.match(_ID, value):
                raise LifecycleError(f"第 {index} 条建议的 {field} 不合规")
        for where, text in _strings(raw):
            if has_markup(text):
                raise LifecycleError(f"第 {index} 条建议的 {where} 含有标记或链接，已拒绝")
        checked.proposals.append(proposal)
        if proposal.owner_department not in owners:
            raise LifecycleError(f"第 {index} 条建议的责任部门“{proposal.owner_department}”不在服务矩阵中")
        if proposal.cluster_id not in cluster_ids:
            raise LifecycleError(f"第 {index} 条建议引用的问题 {proposal.cluster_id} 不在本次运行的问题中")
    for key, count in volumes.items():
        owner, _, tag = key.partition("|")
        if owner not in owners or tag not in tags:
            raise LifecycleError(f"问题量键“{key[:60]}”不是服务矩阵中的部门|分类标签")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise LifecycleError(f"问题量“{key[:60]}”必须是非负整数")
    return checked


def _validated(model: type[Contract], raw: Any, what: str) -> Contract:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        where = "、".join(".".join(str(p) for p in e["loc"]) + f"（{e['msg']}）" for e in exc.errors()[:3])
        raise LifecycleError(f"{what}不符合输出约定：{where}") from None
