"""The generator's answers about each demo voice, kept out of the voices themselves.

A real export does not say which scenario a voice is about, so neither does a demo voice: what the
generator knows (scenario, kind, style, personal data, repeat and duplicate links) goes to a separate
answer file in an `answers/` folder beside the voices (`answers/X.jsonl` for `X.jsonl`), where
`voc ingest folder/*.jsonl` cannot pick it up by mistake. Only benchmarks and tests read it; it must
never reach the agents.
"""

from __future__ import annotations

from pathlib import Path

from voc.demo.data import Frozen
from voc.demo.people import PiiKind
from voc.demo.topics import Kind

ANSWERS_DIR = "answers"


class Answer(Frozen):
    """What the generator knows about one voice."""

    id: str
    scenario: str  # the topic key: a scenario of scenarios.yaml, consult_…, praise_… or oneoff_NN
    kind: Kind
    style: str
    pii: PiiKind | None = None  # the kind of personal data written into the text
    repeat_of: str | None = None  # the voice this customer contacted the bank about before
    duplicate_of: str | None = None  # the voice this row is an exact copy of (only the id differs)


def answers_path(voices: str | Path) -> Path:
    """Where the answers to a voices file go: demo/voices.jsonl → demo/answers/voices.jsonl."""
    path = Path(voices)
    return path.parent / ANSWERS_DIR / path.name


def read_answers(path: str | Path) -> dict[str, Answer]:
    """The answers of a voices file (or of the answer file itself), by voice id."""
    path = Path(path)
    if path.parent.name != ANSWERS_DIR:
        path = answers_path(path)
    with path.open(encoding="utf-8") as lines:
        answers = (Answer.model_validate_json(line) for line in lines if line.strip())
        return {answer.id: answer for answer in answers}
