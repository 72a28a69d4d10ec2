"""Run the LoCoMo retrieve-then-rerank benchmark and summarize it in the model card's columns.

For each question with evidence, in file order: the candidates are its conversation's turns rendered as core
documents (``{"text", "date", "speaker"}`` through ``document_template``, the same text the reranker scores),
ranked by the first stage, top ``candidates`` kept. The reranker (when given) scores those candidates with one
``rerank`` call, timed; its order is by P(yes), ties keeping the first-stage order.

Example:
    >>> from memreranker_core import MemReranker  # doctest: +SKIP
    >>> data = load_locomo("locomo10.json")  # doctest: +SKIP
    >>> run = run_locomo(data, MemReranker(backend="hosted"), EvalConfig(limit=50))  # doctest: +SKIP
    >>> summarize(run).groups["overall"].reranked["MAP"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from memreranker_core.documents import render_document, template_fields
from memreranker_core.errors import InvalidInputError
from memreranker_core.eval.first_stage import create_first_stage
from memreranker_core.eval.locomo import ADVERSARIAL_CATEGORY, CATEGORY_NAMES, Conversation, LocomoData, Question
from memreranker_core.eval.metrics import (
    CARD_COLUMNS,
    RANKING_COLUMNS,
    mean,
    percentile,
    ranking_metrics,
    threshold_f1,
)
from memreranker_core.reranker import check_threshold

logger = logging.getLogger(__name__)

#: How a turn becomes the text that BM25 indexes and the reranker scores.
DEFAULT_TEMPLATE = "[{date}] {speaker}: {text}"
#: The group of categories 1-4; category 5 (adversarial) is reported apart.
OVERALL = "overall"


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation run.

    Attributes:
        candidates: How many first-stage results per question are reranked (K).
        first_stage: Name of the first stage (see ``memreranker_core.eval.first_stage.FIRST_STAGES``).
        threshold: P(yes) threshold of the F1 column, in [0, 1].
        limit: Evaluate only the first N questions that have evidence (file order), or all when ``None``.
        document_template: Template rendering a turn's ``text``, ``date`` and ``speaker``.
        image_captions: Append shared images' captions to the turn text.

    Example:
        >>> EvalConfig(candidates=20, limit=100).candidates
        20
    """

    candidates: int = 50
    first_stage: str = "bm25"
    threshold: float = 0.5
    limit: int | None = None
    document_template: str = DEFAULT_TEMPLATE
    image_captions: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise InvalidInputError(f"candidates must be a whole number >= 1, not {self.candidates!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise InvalidInputError(f"limit must be a whole number >= 1 or None, not {self.limit!r}")
        check_threshold(self.threshold)
        template_fields(self.document_template)
        create_first_stage(self.first_stage)  # fail on an unknown name before any work


@dataclass(frozen=True)
class QuestionOutcome:
    """What happened to one question.

    Attributes:
        qid: Question id.
        category: LoCoMo category.
        question: The question text.
        relevant: Its evidence turn ids.
        candidates: The first stage's top-K turn ids, best first.
        first_stage_scores: Their first-stage scores, same order.
        reranked: The candidates in the reranker's order (``None`` in a first-stage-only run).
        rerank_scores: P(yes) per candidate, in ``candidates`` order (``None`` in a first-stage-only run).
        latency_s: Wall time of the rerank call, seconds (``None`` in a first-stage-only run).
    """

    qid: str
    category: int
    question: str
    relevant: tuple[str, ...]
    candidates: tuple[str, ...]
    first_stage_scores: tuple[float, ...]
    reranked: tuple[str, ...] | None = None
    rerank_scores: tuple[float, ...] | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class EvalRun:
    """The raw outcome of a run: one ``QuestionOutcome`` per evaluated question, plus what was skipped.

    Attributes:
        config: The settings.
        outcomes: Evaluated questions, in file order.
        skipped_no_evidence: Ids of questions without usable evidence (none given, or none naming a real turn).
        source: The LoCoMo file.
        num_turns: Turns in the file.
        num_questions: Questions in the file.
        evidence_repairs: Evidence entries the loader repaired or dropped, as ``{"qid", "raw", "parsed",
            "unknown"}``.
        reranker: The reranker's public, secret-free settings (``None`` in a first-stage-only run).
        first_stage: The first stage's settings.
    """

    config: EvalConfig
    outcomes: tuple[QuestionOutcome, ...]
    skipped_no_evidence: tuple[str, ...]
    source: str = ""
    num_turns: int = 0
    num_questions: int = 0
    evidence_repairs: tuple[dict[str, Any], ...] = ()
    reranker: dict[str, Any] | None = None
    first_stage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSummary:
    """Mean card columns of one group of questions.

    Attributes:
        questions: Number of questions in the group.
        first_stage: Column -> mean, for the first-stage order (F1 is absent: BM25 scores are not calibrated).
        reranked: Column -> mean after reranking, all ten columns (``None`` in a first-stage-only run).
        candidate_recall: Mean share of evidence turns among the K candidates: the ceiling of any reranker.
        latency_mean_s: Mean rerank latency per question, seconds.
        latency_p95_s: 95th percentile of the rerank latency per question, seconds.
    """

    questions: int
    first_stage: dict[str, float]
    reranked: dict[str, float] | None
    candidate_recall: float
    latency_mean_s: float | None = None
    latency_p95_s: float | None = None


@dataclass(frozen=True)
class Summary:
    """Per-group means: ``"overall"`` (categories 1-4), ``"category 1 (multi-hop)"`` ... and
    ``"category 5 (adversarial)"`` (not part of overall).

    Example:
        >>> summary = summarize(run)  # doctest: +SKIP
        >>> summary.groups["overall"].first_stage["R@20"]  # doctest: +SKIP
    """

    groups: dict[str, GroupSummary]


def group_name(category: int) -> str:
    """The report's name of a category's group, e.g. ``"category 2 (temporal)"``."""
    name = CATEGORY_NAMES.get(category)
    return f"category {category} ({name})" if name else f"category {category}"


def candidate_documents(conversation: Conversation, config: EvalConfig) -> list[dict[str, str]]:
    """The conversation's turns as core documents, in turn order."""
    return [turn.document(image_captions=config.image_captions) for turn in conversation.turns]


def run_locomo(
    data: LocomoData,
    reranker: Any = None,
    config: EvalConfig | None = None,
    *,
    progress: bool | None = None,
) -> EvalRun:
    """Retrieve (and rerank, when ``reranker`` is given) every question with evidence.

    Args:
        data: The loaded benchmark.
        reranker: A ``MemReranker`` (or anything with its ``rerank`` method and ``document_template``), or
            ``None`` to evaluate the first stage alone.
        config: The settings (default ``EvalConfig()``).
        progress: Show a tqdm progress bar on stderr; ``None`` shows it only on a terminal.

    Raises:
        InvalidInputError: The reranker's ``document_template`` differs from the config's (the first stage and
            the reranker must see the same text).
    """
    config = config or EvalConfig()
    template = getattr(reranker, "document_template", config.document_template)
    if reranker is not None and template != config.document_template:
        raise InvalidInputError(
            f"the reranker's document_template {template!r} differs from the evaluation's "
            f"{config.document_template!r}; build it with MemReranker(document_template=config.document_template)"
        )
    stage = create_first_stage(config.first_stage)
    work, skipped = _select_questions(data, config.limit)
    bar = _progress_bar(len(work), progress, "reranking" if reranker is not None else "first stage")
    outcomes: list[QuestionOutcome] = []
    indexes: dict[str, Any] = {}
    documents: dict[str, list[dict[str, str]]] = {}
    try:
        for conversation, question in work:
            key = conversation.sample_id
            if key not in indexes:
                documents[key] = candidate_documents(conversation, config)
                texts = [render_document(doc["text"], doc, template=config.document_template) for doc in documents[key]]
                indexes[key] = stage.index(texts)
            ranked = indexes[key].rank(question.text, config.candidates)
            candidates = [conversation.turns[position].dia_id for position, _ in ranked]
            outcome = QuestionOutcome(
                qid=question.qid,
                category=question.category,
                question=question.text,
                relevant=question.evidence,
                candidates=tuple(candidates),
                first_stage_scores=tuple(score for _, score in ranked),
            )
            if reranker is not None:
                outcome = _rerank(reranker, outcome, [documents[key][position] for position, _ in ranked])
            outcomes.append(outcome)
            bar.update(1)
    finally:
        bar.close()
    return EvalRun(
        config=config,
        outcomes=tuple(outcomes),
        skipped_no_evidence=tuple(skipped),
        source=data.source,
        num_turns=data.num_turns,
        num_questions=data.num_questions,
        evidence_repairs=tuple(asdict(issue) for issue in data.evidence_issues),
        reranker=_describe(reranker),
        first_stage=stage.describe(),
    )


def _describe(reranker: Any) -> dict[str, Any] | None:
    if reranker is None:
        return None
    describe = getattr(reranker, "describe", None)
    return describe() if callable(describe) else {"class": type(reranker).__name__}


def _select_questions(data: LocomoData, limit: int | None) -> tuple[list[tuple[Conversation, Question]], list[str]]:
    work: list[tuple[Conversation, Question]] = []
    skipped: list[str] = []
    for conversation in data.conversations:
        for question in conversation.questions:
            if limit is not None and len(work) >= limit:
                return work, skipped
            if question.evidence:
                work.append((conversation, question))
            else:
                skipped.append(question.qid)
    return work, skipped


def _rerank(reranker: Any, outcome: QuestionOutcome, documents: Sequence[Mapping[str, str]]) -> QuestionOutcome:
    started = time.perf_counter()
    results = reranker.rerank(outcome.question, list(documents))
    latency = time.perf_counter() - started
    if sorted(result.index for result in results) != list(range(len(documents))):
        raise RuntimeError(f"the reranker did not return every candidate exactly once for {outcome.qid}")
    scores = [0.0] * len(documents)
    for result in results:
        scores[result.index] = float(result.score)
    return QuestionOutcome(
        **{
            **asdict(outcome),
            "reranked": tuple(outcome.candidates[result.index] for result in results),
            "rerank_scores": tuple(scores),
            "latency_s": latency,
        }
    )


def _progress_bar(total: int, progress: bool | None, label: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is in the eval extra; without it, run silently
        return _NoBar()
    return tqdm(total=total, desc=f"LoCoMo {label}", unit="q", disable=None if progress is None else not progress)


class _NoBar:
    def update(self, _: int) -> None:
        return None

    def close(self) -> None:
        return None


def summarize(run: EvalRun) -> Summary:
    """Mean card columns per group, for the first stage and after reranking.

    Groups: ``"overall"`` (categories 1-4), one per category present, and category 5 apart (never in overall).
    """
    if not run.outcomes:
        raise InvalidInputError("no question was evaluated; check --limit and the data file")
    k = run.config.candidates
    extra = {f"R@{k}": f"recall@{k}"}
    qrels = {outcome.qid: outcome.relevant for outcome in run.outcomes}
    first = ranking_metrics(qrels, {outcome.qid: outcome.candidates for outcome in run.outcomes}, extra)
    reranked = None
    if all(outcome.reranked is not None for outcome in run.outcomes):
        reranked = ranking_metrics(qrels, {outcome.qid: outcome.reranked for outcome in run.outcomes})
        for outcome in run.outcomes:
            scores = dict(zip(outcome.candidates, outcome.rerank_scores or (), strict=True))
            reranked[outcome.qid]["F1"] = threshold_f1(scores, outcome.relevant, run.config.threshold)
    members: dict[str, list[QuestionOutcome]] = {}
    for outcome in run.outcomes:
        if outcome.category != ADVERSARIAL_CATEGORY:
            members.setdefault(OVERALL, []).append(outcome)
    for category in sorted({outcome.category for outcome in run.outcomes}):
        members[group_name(category)] = [outcome for outcome in run.outcomes if outcome.category == category]
    groups = {}
    for name, outcomes in members.items():
        qids = [outcome.qid for outcome in outcomes]
        latencies = [outcome.latency_s for outcome in outcomes if outcome.latency_s is not None]
        groups[name] = GroupSummary(
            questions=len(outcomes),
            first_stage={column: mean([first[qid][column] for qid in qids]) for column in RANKING_COLUMNS},
            reranked=None if reranked is None else {c: mean([reranked[qid][c] for qid in qids]) for c in CARD_COLUMNS},
            candidate_recall=mean([first[qid][f"R@{k}"] for qid in qids]),
            latency_mean_s=mean(latencies) if latencies else None,
            latency_p95_s=percentile(latencies, 95) if latencies else None,
        )
    return Summary(groups=groups)
