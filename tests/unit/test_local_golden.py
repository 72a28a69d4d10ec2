"""Golden tests: local scores equal the model card's transformers recipe to 1e-5 in float32."""

from __future__ import annotations

import pytest

from memreranker_core import MemReranker
from memreranker_core.prompt import query_field
from tests.conftest import TINY_MODEL_INSTRUCTION
from tests.support.golden_inputs import HARD_CASES, locomo_turns, synthetic_memories

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from memreranker_core.testing.card_recipe import card_scores  # noqa: E402

TOLERANCE = 1e-5
MAX_LENGTH = 160  # small, so that long documents are truncated
QUERY = "When did Caroline go to the LGBTQ support group?"
CONTEXT = ["Melanie: How have you been?", "Caroline: Busy! I went to a support group again."]


@pytest.fixture(scope="module")
def card_model(tiny_model_path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    return model, tokenizer


@pytest.fixture(scope="module")
def reranker(tiny_model_path):
    return MemReranker(model=str(tiny_model_path), device="cpu", max_length=MAX_LENGTH, batch_tokens=700)


def assert_matches_card(ours: list[float], reference: list[float]) -> float:
    assert len(ours) == len(reference)
    worst = max(abs(a - b) for a, b in zip(ours, reference, strict=True))
    assert worst <= TOLERANCE, f"largest difference from the card's recipe: {worst:.2e}"
    return worst


def test_golden_scores_equal_card_recipe_on_generated_memories_and_hard_cases(reranker, card_model):
    documents = synthetic_memories() + HARD_CASES
    ours = reranker.score(QUERY, documents)
    reference = card_scores(*card_model, [(QUERY, d) for d in documents], max_length=MAX_LENGTH)
    assert_matches_card(ours, reference)
    assert max(reference) - min(reference) > 0.3, "the tiny model should spread its scores, or the test is weak"


def test_golden_scores_equal_card_recipe_when_every_prompt_runs_whole(tiny_model_path, card_model):
    documents = synthetic_memories(40, seed=5) + HARD_CASES
    whole = MemReranker(model=str(tiny_model_path), device="cpu", max_length=MAX_LENGTH).warm_up()
    whole.backend.set_budget(pass_overhead=10**9)  # no shared-prefix pass: each prompt runs from its first token
    reference = card_scores(*card_model, [(QUERY, d) for d in documents], max_length=MAX_LENGTH)
    assert_matches_card(whole.score(QUERY, documents), reference)
    assert_matches_card([whole.score(QUERY, [d])[0] for d in documents[-4:]], reference[-4:])


def test_golden_scores_equal_card_recipe_on_locomo_turns(reranker, card_model, locomo_path):
    question, turns = locomo_turns(locomo_path, count=120)
    documents = turns + HARD_CASES
    ours = reranker.score(question, documents)
    reference = card_scores(*card_model, [(question, d) for d in documents], max_length=MAX_LENGTH)
    assert_matches_card(ours, reference)


def test_golden_scores_with_custom_instruction(reranker, card_model):
    instruction = "Given a question about a person's life, find the memory that answers it"
    documents = synthetic_memories(40, seed=3) + HARD_CASES
    ours = reranker.score(QUERY, documents, instruction=instruction)
    reference = card_scores(
        *card_model, [(QUERY, d) for d in documents], instruction=instruction, max_length=MAX_LENGTH
    )
    assert_matches_card(ours, reference)
    assert ours != reranker.score(QUERY, documents), "the instruction must change the prompt"


def test_golden_scores_with_dialogue_context_in_the_query_field(reranker, card_model):
    documents = synthetic_memories(40, seed=4) + HARD_CASES
    ours = reranker.score("When was that?", documents, context=CONTEXT)
    folded = query_field("When was that?", CONTEXT)
    reference = card_scores(*card_model, [(folded, d) for d in documents], max_length=MAX_LENGTH)
    assert_matches_card(ours, reference)


def test_context_given_as_role_content_mappings_renders_as_role_colon_content(reranker):
    documents = synthetic_memories(5)
    as_mappings = [
        {"role": "Melanie", "content": "How have you been?"},
        {"speaker": "Caroline", "text": CONTEXT[1][10:]},
    ]
    assert reranker.score("When was that?", documents, context=as_mappings) == pytest.approx(
        reranker.score("When was that?", documents, context=CONTEXT), abs=1e-9
    )


def test_instance_context_applies_and_a_call_can_clear_it(tiny_model_path, reranker):
    documents = synthetic_memories(6)
    with_context = MemReranker(model=str(tiny_model_path), device="cpu", max_length=MAX_LENGTH, context=CONTEXT)
    assert with_context.score("When?", documents) == pytest.approx(
        reranker.score("When?", documents, context=CONTEXT), abs=1e-9
    )
    assert with_context.score("When?", documents, context=[]) == pytest.approx(
        reranker.score("When?", documents), abs=1e-9
    )


def test_default_instruction_is_read_from_config_sentence_transformers(tiny_instruction_model_path, card_model):
    documents = synthetic_memories(30, seed=5)
    ours = MemReranker(model=str(tiny_instruction_model_path), device="cpu").score(QUERY, documents)
    reference = card_scores(*card_model, [(QUERY, d) for d in documents], instruction=TINY_MODEL_INSTRUCTION)
    assert_matches_card(ours, reference)


def test_huge_document_is_cut_from_its_tail_and_scored_like_the_card(reranker, card_model):
    huge = "Caroline went to the support group. " + "It was a long day. " * 50_000  # about 1 MB
    ours = reranker.score(QUERY, [huge, "short memory"])
    reference = card_scores(*card_model, [(QUERY, huge), (QUERY, "short memory")], max_length=MAX_LENGTH)
    assert_matches_card(ours, reference)
    tail_changed = huge + " Totally different ending."
    assert reranker.score(QUERY, [tail_changed]) == pytest.approx(ours[:1], abs=1e-9)
