"""Proposals: list and filter, one with its history, lifecycle changes, verification."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel, Field

from voc.api.deps import BookDep
from voc.contracts import ProposalStatus
from voc.lifecycle import Effect, ProposalView

router = APIRouter(prefix="/api/proposals", tags=["proposals"])


class StatusChange(BaseModel):
    status: ProposalStatus = Field(description="整改中 or 已完成 (已验证 / 未达标 come from verification).")
    actor: str = Field(min_length=1, max_length=64, description="Who makes the change.")
    note: str = Field(default="", max_length=1000)
    on: date | None = Field(default=None, description="Completion date (default today).")


class Verification(BaseModel):
    actor: str = Field(min_length=1, max_length=64)


@router.get("")
def list_proposals(book: BookDep, owner: str | None = None, status: ProposalStatus | None = None,
                   overdue: bool = False) -> list[ProposalView]:
    items = book.list(owner, status.value if status else None)
    return [p for p in items if p.overdue or not overdue]


@router.get("/{proposal_id}")
def get_proposal(proposal_id: str, book: BookDep) -> ProposalView:
    return book.get(proposal_id)


@router.patch("/{proposal_id}")
def change_status(proposal_id: str, change: StatusChange, book: BookDep) -> ProposalView:
    return book.update(proposal_id, change.status.value, change.actor, change.note, on=change.on)


@router.get("/{proposal_id}/effect")
def effect(proposal_id: str, book: BookDep) -> Effect:
    """Before/after figures without changing the status."""
    return book.evaluate(proposal_id)


@router.post("/{proposal_id}/verify")
def verify(proposal_id: str, body: Verification, book: BookDep) -> ProposalView:
    return book.verify(proposal_id, body.actor)
