"""Schemas of the knowledge base files under knowledge/: service matrix, taxonomy, cases, documents."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from voc.contracts import Dimension
from voc.models import Business, Channel

WILDCARD: Literal["*"] = "*"


def _any_channel() -> list[Channel | Literal["*"]]:
    return [WILDCARD]


def _any_business() -> list[Business | Literal["*"]]:
    return [WILDCARD]


class Department(BaseModel):
    name: str
    scope: str = Field(description="What this owner department is responsible for, in one or two sentences.")


class MatrixEntry(BaseModel):
    """One row of the 服务矩阵对照表: channel × business × scene → owner and handling role."""

    id: str
    channels: list[Channel | Literal["*"]] = Field(default_factory=_any_channel)
    business: list[Business | Literal["*"]] = Field(default_factory=_any_business)
    scene: str = Field(description="The service scene, e.g. 信用卡额度调整.")
    keywords: list[str] = Field(min_length=1, description="Words in a voice that signal this scene.")
    owner: str
    role: str = Field(description="The handling role inside the owner, e.g. 产品经理 / 系统运维 / 坐席管理.")
    description: str = ""
    examples: list[str] = Field(default_factory=list, description=(
        "Example customer voices of this scene, in the styles voices arrive in (hotline ASR, chat, ticket, "
        "12378 referral, app review, forum post, Traditional Chinese); training data for the learned owner "
        "classifier."))


class ServiceMatrix(BaseModel):
    version: str
    departments: list[Department]
    entries: list[MatrixEntry]

    @field_validator("entries")
    @classmethod
    def _unique_ids(cls, entries: list[MatrixEntry]) -> list[MatrixEntry]:
        ids = [e.id for e in entries]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate matrix entry ids")
        return entries

    def department_names(self) -> list[str]:
        return [d.name for d in self.departments]


class TagDefinition(BaseModel):
    """A taxonomy tag with its 数据词典 entry."""

    path: str = Field(description="L1>L2>L3, L1 being the dimension's name (Dimension.label).")
    dimension: Dimension
    definition: str
    use_when: str
    dont_use_when: str
    examples: list[str] = Field(min_length=2)
    keywords: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list, description="Former paths (renames and merges).")
    short_term_measures: list[str] = Field(
        default_factory=list,
        description="Typical short-term measures for this tag's scene (2–3, each ≤ 40 characters): actions the owner "
                    "the service matrix routes it to can take within days. Used when no case or document of the "
                    "same scene qualifies; optional so that older taxonomy files still load.")
    long_term_measures: list[str] = Field(
        default_factory=list,
        description="Typical long-term measures for this tag's scene (2–3, each ≤ 40 characters): structural "
                    "fixes such as mechanisms, system changes, monitoring or rule changes. Optional, like the "
                    "short-term ones.")

    @property
    def levels(self) -> list[str]:
        return self.path.split(">")


class ChangelogEntry(BaseModel):
    version: str
    date: date
    changes: list[str]


class DimensionDefinition(BaseModel):
    code: Dimension
    name: str
    definition: str


class Taxonomy(BaseModel):
    version: str
    dimensions: list[DimensionDefinition]
    tags: list[TagDefinition]
    changelog: list[ChangelogEntry] = Field(default_factory=list)


class EffectFigure(BaseModel):
    metric: str
    before: str
    after: str


class Case(BaseModel):
    """A past complaint-reduction case (压降客诉案例)."""

    id: str
    title: str
    problem: str
    channel: Channel | None = None
    business: Business
    dimension: Dimension
    tag: str | None = None
    root_cause: str
    short_term_measures: list[str] = Field(min_length=1)
    long_term_measures: list[str] = Field(min_length=1)
    owner: str
    effect: list[EffectFigure] = Field(min_length=1)
    period: str = Field(description="When the fix ran, e.g. 2024Q3.")
    source: str = Field(default="本行", description="本行 / 行业案例 / 闭环沉淀")


class KnowledgeDoc(BaseModel):
    """A knowledge document (markdown with YAML front matter under knowledge/docs/)."""

    id: str
    title: str
    category: Literal["服务标准", "SLA与时效", "产品规则", "业务流程", "合规要求", "应急预案", "方法论"]
    business: list[Business] = Field(default_factory=list)
    owner: str | None = None
    body: str


class BoilerplateList(BaseModel):
    """knowledge/boilerplate.yaml: text that is not the customer's problem (preambles, templates, fillers)."""

    version: str
    phrases: list[str] = Field(default_factory=list)
    fillers: list[str] = Field(default_factory=list)
