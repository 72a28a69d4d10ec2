"""Paired significance tests between two systems on the same questions, with ranx's statistical tests.

Each card column is tested on its own, on the per-question values of the two systems (the values whose means the
table shows): ``student`` is ranx's two-sided paired Student's t-test (``ranx.compare``'s default, deterministic),
``fisher`` ranx's Fisher randomization test (1,000 permutations, seed 42; ranx draws them in parallel threads,
so its p-value varies by about ±0.01 from run to run despite the seed). A difference is *significant* when
p <= ``max_p`` (0.05 by default). There is no correction for testing ten columns and several groups: read a lone
significant column among many with that in mind.

Two systems with identical values on every question get p = 1, and with the same nonzero difference on every
question p = 0 under the t-test (the t statistic is undefined or infinite there).

Example:
    >>> result = paired_test([0.0, 0.5, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0])  # doctest: +SKIP
    >>> result.significant  # doctest: +SKIP
    False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memreranker_core._optional import require
from memreranker_core.errors import InvalidInputError

#: Names accepted by ``--stat-test``.
STAT_TESTS = ("student", "fisher")
#: The default significance level.
DEFAULT_MAX_P = 0.05
#: Fisher randomization test settings (ranx's defaults).
FISHER_PERMUTATIONS = 1000
FISHER_SEED = 42


@dataclass(frozen=True)
class Significance:
    """The outcome of one paired test.

    Attributes:
        p_value: The two-sided p-value.
        significant: ``p_value <= max_p``.
        test: ``"student"`` or ``"fisher"``.
        questions: How many paired values were tested.

    Example:
        >>> Significance(p_value=0.003, significant=True, test="student", questions=120).significant
        True
    """

    p_value: float
    significant: bool
    test: str
    questions: int

    def as_dict(self) -> dict[str, float | bool | str | int]:
        """The JSON form: ``{"p_value", "significant", "test", "questions"}``."""
        return {
            "p_value": round(self.p_value, 6),
            "significant": self.significant,
            "test": self.test,
            "questions": self.questions,
        }


def check_test(test: str, max_p: float) -> None:
    """Refuse an unknown test name or a level outside (0, 1)."""
    if test not in STAT_TESTS:
        raise InvalidInputError(f"unknown statistical test {test!r}; available: {', '.join(STAT_TESTS)}")
    if isinstance(max_p, bool) or not isinstance(max_p, (int, float)) or not 0.0 < float(max_p) < 1.0:
        raise InvalidInputError(f"max_p must be a number strictly between 0 and 1 (e.g. 0.05), not {max_p!r}")


def paired_test(
    control: Sequence[float], treatment: Sequence[float], test: str = "student", max_p: float = DEFAULT_MAX_P
) -> Significance:
    """Test whether two systems' per-question values differ, with ranx's ``paired_student_t_test`` or
    ``fisher_randomization_test``.

    Args:
        control: One system's value per question.
        treatment: The other's, for the same questions in the same order.
        test: ``"student"`` or ``"fisher"``.
        max_p: Significance level.

    Raises:
        InvalidInputError: The sequences differ in length, hold fewer than two questions, or a setting is invalid.
    """
    check_test(test, max_p)
    if len(control) != len(treatment):
        raise InvalidInputError(f"paired values must match: {len(control)} vs {len(treatment)} questions")
    if len(control) < 2:
        raise InvalidInputError("a paired test needs at least two questions")
    require("ranx", extra="eval", purpose="The significance tests")
    import numpy as np
    from ranx.statistical_tests import fisher_randomization_test, paired_student_t_test

    a = np.asarray(control, dtype=np.float64)
    b = np.asarray(treatment, dtype=np.float64)
    if np.array_equal(a, b):
        return Significance(p_value=1.0, significant=False, test=test, questions=len(a))
    differences = b - a
    if test == "student" and np.all(differences == differences[0]):
        # the same nonzero difference on every question: t is infinite (scipy warns and may return NaN)
        return Significance(p_value=0.0, significant=True, test=test, questions=len(a))
    if test == "student":
        p_value, _ = paired_student_t_test(a, b, max_p)
    else:
        p_value, _ = fisher_randomization_test(a, b, FISHER_PERMUTATIONS, max_p, FISHER_SEED)
    p_value = float(p_value)
    if math.isnan(p_value):
        raise InvalidInputError("the paired test gave no p-value: are there NaN values among the inputs?")
    return Significance(p_value=p_value, significant=p_value <= max_p, test=test, questions=len(a))


def compare_columns(
    control: Mapping[str, Mapping[str, float]],
    treatment: Mapping[str, Mapping[str, float]],
    qids: Sequence[str],
    columns: Sequence[str],
    test: str = "student",
    max_p: float = DEFAULT_MAX_P,
) -> dict[str, Significance]:
    """``paired_test`` of each column both systems have, over ``qids``.

    Args:
        control: Question id -> column -> value, for one system.
        treatment: The same for the other system.
        qids: The questions to pair (each must be in both).
        columns: Columns to test; those missing from either side for any question are left out.
    """
    results: dict[str, Significance] = {}
    if len(qids) < 2:
        return results
    for column in columns:
        if all(column in control[qid] and column in treatment[qid] for qid in qids):
            results[column] = paired_test(
                [control[qid][column] for qid in qids], [treatment[qid][column] for qid in qids], test, max_p
            )
    return results
