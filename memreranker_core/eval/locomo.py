"""Load the LoCoMo benchmark file (``locomo10.json``) into frozen dataclasses.

The file is a list of conversations. Each has ``conversation`` (``speaker_a``, ``speaker_b``, ``session_<n>``
lists of turns ``{"speaker", "dia_id", "text", ["blip_caption"]}`` and ``session_<n>_date_time`` strings) and
``qa`` (``{"question", "answer" | "adversarial_answer", "evidence": ["D1:3", ...], "category": 1..5}``).

Evidence ids are repaired, not trusted: an entry such as ``"D8:6; D9:17"`` or ``"D9:1 D4:4 D4:6"`` holds several
ids, ``"D:11:26"`` means ``D11:26``, and ``"D"`` holds none. Every id found is normalized (``D08:6`` ->
``D8:6``); ids that name no turn of the conversation are dropped and recorded. A question left with no evidence
keeps ``evidence == ()`` so the evaluation can skip and count it.

Example:
    >>> data = load_locomo("locomo10.json")  # doctest: +SKIP
    >>> len(data.conversations), data.num_turns, data.num_questions  # doctest: +SKIP
    (10, 5882, 1986)
    >>> parse_evidence("D8:6; D9:17")
    ('D8:6', 'D9:17')
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memreranker_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

#: LoCoMo's category numbers, as the released file uses them (the mapping used by Mem0, Zep and MemOS reports).
CATEGORY_NAMES: Mapping[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
#: The adversarial category, reported apart from the overall score.
ADVERSARIAL_CATEGORY = 5

_ID_PATTERN = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)")
_CANONICAL_ID = re.compile(r"D\d+:\d+")
_SESSION_KEY = re.compile(r"session_(\d+)")


@dataclass(frozen=True)
class Turn:
    """One dialogue turn: the memory item the retriever and the reranker rank.

    Attributes:
        dia_id: Normalized turn id, ``D<session>:<turn>``.
        session: Session number.
        date: The session's date and time as the file gives it, e.g. ``"1:56 pm on 8 May, 2023"``.
        speaker: Who spoke.
        text: What they said.
        image_caption: The BLIP caption of an image shared in the turn, if any.

    Example:
        >>> turn = Turn("D1:3", 1, "1:56 pm on 8 May, 2023", "Caroline", "I went to a support group.", None)
        >>> turn.document()
        {'text': 'I went to a support group.', 'date': '1:56 pm on 8 May, 2023', 'speaker': 'Caroline'}
    """

    dia_id: str
    session: int
    date: str
    speaker: str
    text: str
    image_caption: str | None = None

    def document(self, image_captions: bool = True) -> dict[str, str]:
        """The turn as a core document mapping (``text`` + ``date`` + ``speaker``) for ``document_template``.

        Args:
            image_captions: Append ``" (shared an image: <caption>)"`` to the text of turns that shared an image.
        """
        text = self.text
        if image_captions and self.image_caption:
            text = f"{text} (shared an image: {self.image_caption})"
        return {"text": text, "date": self.date, "speaker": self.speaker}


@dataclass(frozen=True)
class Question:
    """One LoCoMo question.

    Attributes:
        qid: Unique id, ``<sample_id>/q<position>`` (position in the conversation's ``qa`` list, from 0).
        conversation_id: The conversation's ``sample_id``.
        text: The question.
        category: LoCoMo category, 1-5 (see ``CATEGORY_NAMES``).
        evidence: Normalized ids of the evidence turns that exist in the conversation, in file order, unique.
        raw_evidence: The ``evidence`` list exactly as the file gives it.
        answer: The reference answer (``adversarial_answer`` for category 5), as text; ``None`` when absent.
    """

    qid: str
    conversation_id: str
    text: str
    category: int
    evidence: tuple[str, ...]
    raw_evidence: tuple[str, ...]
    answer: str | None = None


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo conversation: its turns in order and its questions.

    Attributes:
        sample_id: The file's id, e.g. ``"conv-26"``.
        speakers: ``(speaker_a, speaker_b)``.
        turns: Every turn of every session, in session then turn order.
        questions: Its questions, in file order.
    """

    sample_id: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class EvidenceIssue:
    """An evidence entry that needed repair or could not be used.

    Attributes:
        qid: The question.
        raw: The entry as written in the file.
        parsed: The ids read from it (``()`` when none could be read).
        unknown: Parsed ids that name no turn of the conversation (dropped).
    """

    qid: str
    raw: str
    parsed: tuple[str, ...]
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocomoData:
    """The loaded benchmark and what the loader had to repair.

    Attributes:
        conversations: The conversations, in file order.
        evidence_issues: Malformed evidence entries (several ids in one string, a stray ``:``, no id at all) and
            entries naming turns that do not exist.
        source: The file it came from.
    """

    conversations: tuple[Conversation, ...]
    evidence_issues: tuple[EvidenceIssue, ...] = ()
    source: str = ""

    @property
    def num_turns(self) -> int:
        """Number of turns in all conversations."""
        return sum(len(conversation.turns) for conversation in self.conversations)

    @property
    def num_questions(self) -> int:
        """Number of questions in all conversations (with or without evidence)."""
        return sum(len(conversation.questions) for conversation in self.conversations)

    def questions(self) -> list[Question]:
        """Every question, conversation by conversation, in file order."""
        return [question for conversation in self.conversations for question in conversation.questions]


def normalize_id(session: int | str, turn: int | str) -> str:
    """The canonical turn id ``D<session>:<turn>`` without leading zeros."""
    return f"D{int(session)}:{int(turn)}"


def parse_evidence(entry: str) -> tuple[str, ...]:
    """Every turn id in one evidence entry, normalized, in order (duplicates kept).

    Examples:
        >>> parse_evidence("D1:3")
        ('D1:3',)
        >>> parse_evidence("D22:1 D22:2")
        ('D22:1', 'D22:2')
        >>> parse_evidence("D:11:26")
        ('D11:26',)
        >>> parse_evidence("D")
        ()
    """
    return tuple(normalize_id(session, turn) for session, turn in _ID_PATTERN.findall(entry))


def load_locomo(path: str | Path) -> LocomoData:
    """Read ``locomo10.json`` (or any file of the same shape).

    Args:
        path: The JSON file.

    Returns:
        The conversations with repaired evidence, and the list of repairs.

    Raises:
        InvalidInputError: The file is missing, is not JSON, or does not have LoCoMo's shape; the message says
            what was expected where.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"LoCoMo file not found: {path}. Download locomo10.json from https://github.com/snap-research/locomo "
            "(data/locomo10.json) and pass its path with --data"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise InvalidInputError(f"{path} is JSON nested too deeply to read; is this a LoCoMo file?") from None
    except (UnicodeDecodeError, ValueError) as exc:  # bad JSON, or an integer over Python's digit limit
        raise InvalidInputError(f"{path} is not a JSON file ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError(f"{path} must hold a non-empty JSON list of LoCoMo conversations")
    issues: list[EvidenceIssue] = []
    try:
        conversations = tuple(_conversation(item, position, issues) for position, item in enumerate(raw))
    except RecursionError:  # a field nested just under the parser's limit, turned into text
        raise InvalidInputError(f"{path} holds a value nested too deeply to read; is this a LoCoMo file?") from None
    ids = [conversation.sample_id for conversation in conversations]
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"{path}: conversation sample_id values repeat: {ids}")
    data = LocomoData(conversations=conversations, evidence_issues=tuple(issues), source=str(path))
    logger.info(
        "loaded %s: %d conversations, %d turns, %d questions, %d evidence entries repaired or dropped",
        path,
        len(conversations),
        data.num_turns,
        data.num_questions,
        len(issues),
    )
    return data


def _require(mapping: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise InvalidInputError(f"{where} has no {key!r} field; is this a LoCoMo file?")
    value = mapping[key]
    if not isinstance(value, kind):
        raise InvalidInputError(f"{where}.{key} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _conversation(item: Any, position: int, issues: list[EvidenceIssue]) -> Conversation:
    where = f"conversation[{position}]"
    sample_id = item.get("sample_id") if isinstance(item, Mapping) else None
    sample_id = str(sample_id) if sample_id is not None else f"conv-{position}"
    dialogue = _require(item, "conversation", Mapping, where)
    qa = _require(item, "qa", list, where)
    speakers = (str(dialogue.get("speaker_a", "")), str(dialogue.get("speaker_b", "")))
    turns = _turns(dialogue, f"{where}.conversation")
    known = {turn.dia_id for turn in turns}
    questions = tuple(
        _question(entry, sample_id, number, known, issues, f"{where}.qa[{number}]") for number, entry in enumerate(qa)
    )
    return Conversation(sample_id=sample_id, speakers=speakers, turns=turns, questions=questions)


def _turns(dialogue: Mapping[str, Any], where: str) -> tuple[Turn, ...]:
    sessions = sorted(
        (int(match.group(1)), key) for key in dialogue if (match := _SESSION_KEY.fullmatch(key)) is not None
    )
    turns: list[Turn] = []
    seen: set[str] = set()
    for session, key in sessions:
        entries = dialogue[key]
        if not isinstance(entries, list):
            raise InvalidInputError(f"{where}.{key} must be a list of turns, not {type(entries).__name__}")
        date = str(dialogue.get(f"{key}_date_time", ""))
        for number, entry in enumerate(entries):
            spot = f"{where}.{key}[{number}]"
            text = _require(entry, "text", str, spot)
            speaker = _require(entry, "speaker", str, spot)
            raw_id = _require(entry, "dia_id", str, spot)
            if not _CANONICAL_ID.fullmatch(raw_id.strip()):
                raise InvalidInputError(f"{spot}.dia_id {raw_id!r} is not of the form D<session>:<turn>")
            dia_id = parse_evidence(raw_id)[0]
            if dia_id in seen:
                raise InvalidInputError(f"{spot}.dia_id {raw_id!r} repeats an earlier turn id")
            seen.add(dia_id)
            caption = entry.get("blip_caption")
            turns.append(
                Turn(
                    dia_id=dia_id,
                    session=session,
                    date=date,
                    speaker=speaker,
                    text=text,
                    image_caption=caption if isinstance(caption, str) and caption.strip() else None,
                )
            )
    return tuple(turns)


def _question(
    entry: Any, sample_id: str, number: int, known: set[str], issues: list[EvidenceIssue], where: str
) -> Question:
    qid = f"{sample_id}/q{number}"
    text = _require(entry, "question", str, where)
    category = _require(entry, "category", int, where)
    raw_evidence = entry.get("evidence") or []
    if not isinstance(raw_evidence, list) or not all(isinstance(item, str) for item in raw_evidence):
        raise InvalidInputError(f"{where}.evidence must be a list of strings like 'D1:3'")
    evidence: list[str] = []
    for raw in raw_evidence:
        parsed = parse_evidence(raw)
        unknown = tuple(dia_id for dia_id in parsed if dia_id not in known)
        if unknown or not _CANONICAL_ID.fullmatch(raw.strip()):
            issues.append(EvidenceIssue(qid=qid, raw=raw, parsed=parsed, unknown=unknown))
        evidence.extend(dia_id for dia_id in parsed if dia_id in known and dia_id not in evidence)
    answer = entry.get("answer", entry.get("adversarial_answer"))
    return Question(
        qid=qid,
        conversation_id=sample_id,
        text=text,
        category=category,
        evidence=tuple(evidence),
        raw_evidence=tuple(raw_evidence),
        answer=None if answer is None else str(answer),
    )
