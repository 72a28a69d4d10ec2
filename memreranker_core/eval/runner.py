"""Run the LoCoMo retrieve-then-rerank benchmark and summarize it in the model card's columns.

For each question with evidence, in file order: its conversation's turns are rendered as core documents
(``{"text", "date", "speaker"}`` through ``document_template``, the same text the reranker scores) and the first
stage ranks all of them. The *pool* picks the candidates from that ranking (``POOLS``):

- ``first-stage``: the first stage's top ``candidates`` (the end-to-end setting: what a memory system retrieves);
- ``oracle``: every evidence turn of the question, plus the first stage's best non-evidence turns up to
  ``candidates`` in all, in first-stage order: the pool always holds all the evidence, so the table measures the
  reranker alone (a question with more evidence turns than ``candidates`` gets its evidence turns alone).

The reranker (when given) scores the candidates with one ``rerank`` call, timed; its order is by P(yes), ties
keeping the first-stage order.

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
from memreranker_core.eval.embeddings import DEFAULT_EMBEDDING_MODEL
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
from memreranker_core.eval.significance import DEFAULT_MAX_P, Significance, check_test, compare_columns
from memreranker_core.reranker import check_threshold

logger = logging.getLogger(__name__)

#: How a turn becomes the text that BM25 indexes and the reranker scores.
DEFAULT_TEMPLATE = "[{date}] {speaker}: {text}"
#: The group of categories 1-4; category 5 (adversarial) is reported apart.
OVERALL = "overall"
#: Names accepted by ``--pool`` (see the module docstring).
POOLS = ("first-stage", "oracle")
#: Cut-offs at which the first stage's own evidence recall is always reported (plus K).
RECALL_CUTOFFS = (20, 50, 100)


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation run.

    Attributes:
        candidates: How many candidates per question are reranked (K).
        first_stage: Name of the first stage (see ``memreranker_core.eval.first_stage.FIRST_STAGES``).
        threshold: P(yes) threshold of the F1 column, in [0, 1].
        limit: Evaluate only the first N questions that have evidence (file order), or all when ``None``.
        document_template: Template rendering a turn's ``text``, ``date`` and ``speaker``.
        image_captions: Append shared images' captions to the turn text.
        pool: How the candidates are chosen, one of ``POOLS`` (see the module docstring).
        embedding_model: The sentence-transformers model of the ``dense`` and ``hybrid`` first stages.
        embedding_cache: Their embedding cache folder (``None``: ``~/.cache/memreranker/embeddings``).
        embedding_device: Their embedding model's torch device (``None``: a GPU when there is one).
        stat_test: Significance test of reranked vs first stage, ``"student"`` or ``"fisher"``.
        max_p: Significance level.

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
    pool: str = "first-stage"
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_cache: str | None = None
    embedding_device: str | None = None
    stat_test: str = "student"
    max_p: float = DEFAULT_MAX_P

    def __post_init__(self) -> None:
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise InvalidInputError(f"candidates must be a whole number >= 1, not {self.candidates!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise InvalidInputError(f"limit must be a whole number >= 1 or None, not {self.limit!r}")
        check_threshold(self.threshold)
        template_fields(self.document_template)
        if self.pool not in POOLS:
            raise InvalidInputError(f"unknown pool {self.pool!r}; available: {', '.join(POOLS)}")
        check_test(self.stat_test, self.max_p)
        self.make_first_stage()  # fail on an unknown name before any work (nothing is loaded)

    def make_first_stage(self) -> Any:
        """The configured first stage (see ``create_first_stage``)."""
        return create_first_stage(
            self.first_stage,
            embedding_model=self.embedding_model,
            cache_dir=self.embedding_cache,
            device=self.embedding_device,
        )


@dataclass(frozen=True)
class QuestionOutcome:
    """What happened to one question.

    Attributes:
        qid: Question id.
        category: LoCoMo category.
        question: The question text.
        relevant: Its evidence turn ids.
        candidates: The pool's turn ids in first-stage order (K of them, or all evidence turns in an oracle pool
            when there are more than K).
        first_stage_scores: Their first-stage scores, same order.
        reranked: The candidates in the reranker's order (``None`` in a first-stage-only run).
        rerank_scores: P(yes) per candidate, in ``candidates`` order (``None`` in a first-stage-only run).
        latency_s: Wall time of the rerank call, seconds (``None`` in a first-stage-only run).
        evidence_ranks: The 1-based rank of each evidence turn (``relevant`` order) in the first stage's ranking
            of all the conversation's turns: its recall at any cut-off, whatever the pool.
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
    evidence_ranks: tuple[int, ...] = ()


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
        candidate_recall: Mean share of evidence turns among the candidates (the pool): the ceiling of any
            reranker (1.0 in an oracle pool).
        latency_mean_s: Mean rerank latency per question, seconds.
        latency_p95_s: 95th percentile of the rerank latency per question, seconds.
        first_stage_recall: The first stage's own evidence recall over all turns at 20, 50, 100 and K
            (``"R@20"`` ...), whatever the pool.
        significance: Reranked vs first stage per ranking column (``None`` in a first-stage-only run).
        first_stage_turn_recall: The same cut-offs, pooled over evidence turns instead of averaged over questions:
            the share of all the group's evidence turns that the first stage ranks within the cut-off.
    """

    questions: int
    first_stage: dict[str, float]
    reranked: dict[str, float] | None
    candidate_recall: float
    latency_mean_s: float | None = None
    latency_p95_s: float | None = None
    first_stage_recall: dict[str, float] = field(default_factory=dict)
    significance: dict[str, Significance] | None = None
    first_stage_turn_recall: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """Per-group means: ``"overall"`` (categories 1-4), ``"category 1 (multi-hop)"`` ... and
    ``"category 5 (adversarial)"`` (not part of overall); and each question's values, ``per_question[qid]`` =
    ``{"first_stage": {column: value}, "reranked": {...}, "candidate_recall": {"R@K": value}}`` (what the
    significance tests and ``compare`` pair).

    Example:
        >>> summary = summarize(run)  # doctest: +SKIP
        >>> summary.groups["overall"].first_stage["R@20"]  # doctest: +SKIP
    """

    groups: dict[str, GroupSummary]
    per_question: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


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
    stage = config.make_first_stage()
    work, skipped = _select_questions(data, config.limit)
    bar = _progress_bar(len(work), progress, "reranking" if reranker is not None else "first stage")
    outcomes: list[QuestionOutcome] = []
    try:
        for conversation, questions in _by_conversation(work):
            documents = candidate_documents(conversation, config)
            texts = [render_document(doc["text"], doc, template=config.document_template) for doc in documents]
            rankings = stage.index(texts).rank_all([question.text for question in questions])
            position_of = {turn.dia_id: position for position, turn in enumerate(conversation.turns)}
            for question, ranking in zip(questions, rankings, strict=True):
                order = [position for position, _ in ranking]
                rank_of = {position: rank for rank, position in enumerate(order, start=1)}
                evidence = [position_of[dia_id] for dia_id in question.evidence]
                score_of = dict(ranking)
                pool = pool_positions(order, evidence, config.candidates, config.pool)
                outcome = QuestionOutcome(
                    qid=question.qid,
                    category=question.category,
                    question=question.text,
                    relevant=question.evidence,
                    candidates=tuple(conversation.turns[position].dia_id for position in pool),
                    first_stage_scores=tuple(score_of[position] for position in pool),
                    evidence_ranks=tuple(rank_of[position] for position in evidence),
                )
                if reranker is not None:
                    outcome = _rerank(reranker, outcome, [documents[position] for position in pool])
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


def pool_positions(order: Sequence[int], evidence: Sequence[int], candidates: int, pool: str) -> list[int]:
    """The candidates' corpus positions, in first-stage order.

    Args:
        order: Every corpus position, best first (the first stage's full ranking).
        evidence: The question's evidence positions.
        candidates: K.
        pool: ``"first-stage"`` (the top K) or ``"oracle"`` (every evidence position plus the best non-evidence
            positions up to K in all).

    Examples:
        >>> pool_positions([4, 3, 2, 1, 0], [0], 3, "first-stage")
        [4, 3, 2]
        >>> pool_positions([4, 3, 2, 1, 0], [0], 3, "oracle")
        [4, 3, 0]
    """
    if pool == "first-stage":
        return list(order[:candidates])
    if pool != "oracle":
        raise InvalidInputError(f"unknown pool {pool!r}; available: {', '.join(POOLS)}")
    wanted = set(evidence)
    room = max(candidates - len(wanted), 0)
    wanted.update([position for position in order if position not in wanted][:room])
    return [position for position in order if position in wanted]


def _by_conversation(
    work: Sequence[tuple[Conversation, Question]],
) -> list[tuple[Conversation, list[Question]]]:
    groups: list[tuple[Conversation, list[Question]]] = []
    for conversation, question in work:
        if not groups or groups[-1][0].sample_id != conversation.sample_id:
            groups.append((conversation, []))
        groups[-1][1].append(question)
    return groups


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


def first_stage_recall(outcome: QuestionOutcome, cutoff: int) -> float:
    """The share of the question's evidence turns that the first stage ranks within ``cutoff`` of all turns."""
    if not outcome.evidence_ranks:
        return float("nan")
    return sum(rank <= cutoff for rank in outcome.evidence_ranks) / len(outcome.evidence_ranks)


def _turn_recall(outcomes: Sequence[QuestionOutcome], cutoff: int) -> float:
    ranks = [rank for outcome in outcomes for rank in outcome.evidence_ranks]
    return sum(rank <= cutoff for rank in ranks) / len(ranks) if ranks else float("nan")


def recall_cutoffs(candidates: int) -> list[int]:
    """``RECALL_CUTOFFS`` plus K, sorted."""
    return sorted({*RECALL_CUTOFFS, candidates})


def summarize(run: EvalRun) -> Summary:
    """Mean card columns per group, for the first stage and after reranking, with significance.

    Groups: ``"overall"`` (categories 1-4), one per category present, and category 5 apart (never in overall).
    """
    if not run.outcomes:
        raise InvalidInputError("no question was evaluated; check --limit and the data file")
    k = run.config.candidates
    # recall over the whole candidate list: in an oracle pool, more than K when a question has more evidence turns
    extra = {"R@cands": "recall"}
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
    cutoffs = recall_cutoffs(k)
    groups = {}
    for name, outcomes in members.items():
        qids = [outcome.qid for outcome in outcomes]
        latencies = [outcome.latency_s for outcome in outcomes if outcome.latency_s is not None]
        significance = None
        if reranked is not None:
            significance = compare_columns(
                first, reranked, qids, RANKING_COLUMNS, run.config.stat_test, run.config.max_p
            )
        groups[name] = GroupSummary(
            questions=len(outcomes),
            first_stage={column: mean([first[qid][column] for qid in qids]) for column in RANKING_COLUMNS},
            reranked=None if reranked is None else {c: mean([reranked[qid][c] for qid in qids]) for c in CARD_COLUMNS},
            candidate_recall=mean([first[qid]["R@cands"] for qid in qids]),
            latency_mean_s=mean(latencies) if latencies else None,
            latency_p95_s=percentile(latencies, 95) if latencies else None,
            first_stage_recall={
                f"R@{cutoff}": mean([first_stage_recall(outcome, cutoff) for outcome in outcomes]) for cutoff in cutoffs
            },
            significance=significance,
            first_stage_turn_recall={f"R@{cutoff}": _turn_recall(outcomes, cutoff) for cutoff in cutoffs},
        )
    per_question = {
        qid: {
            "first_stage": {column: first[qid][column] for column in RANKING_COLUMNS},
            **({"reranked": reranked[qid]} if reranked is not None else {}),
            "candidate_recall": {"R@K": first[qid]["R@cands"]},
        }
        for qid in qrels
    }
    return Summary(groups=groups, per_question=per_question)
