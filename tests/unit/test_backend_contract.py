"""The backend contract says what the code passes: ``ScoreRequest.instruction`` is ``None`` for the model's default,
resolved in one place (``resolve_instruction``), and every backend has the ``model_ref`` the protocol declares."""

from __future__ import annotations

import json

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends import BACKENDS, create_backend
from memreranker_core.checkpoint import read_default_instruction, resolve_instruction
from memreranker_core.prompt import DEFAULT_INSTRUCTION
from memreranker_core.types import ScoreRequest


def _recorded(monkeypatch, reranker: MemReranker) -> list[ScoreRequest]:
    seen: list[ScoreRequest] = []

    def score(request: ScoreRequest) -> list[float]:
        seen.append(request)
        return [0.0] * len(request.documents)

    monkeypatch.setattr(reranker.backend, "score", score)
    return seen


def test_a_call_without_instruction_asks_the_backend_for_the_models_default(monkeypatch):
    assert ScoreRequest("q", ("d",)).instruction is None
    plain = MemReranker(backend="local", model="/models/x")
    seen = _recorded(monkeypatch, plain)
    plain.score("q", ["d"])
    plain.score("q", ["d"], instruction="Per call")
    own = MemReranker(backend="local", model="/models/x", instruction="Per instance")
    seen_own = _recorded(monkeypatch, own)
    own.score("q", ["d"])
    assert [request.instruction for request in seen + seen_own] == [None, "Per call", "Per instance"]


def test_resolve_instruction_takes_the_given_then_the_checkpoints_then_qwens(tmp_path):
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"memory": "Find the memory"}, "default_prompt_name": "memory"}), encoding="utf-8"
    )
    checkpoint = read_default_instruction(str(tmp_path))
    assert resolve_instruction("Given", checkpoint) == "Given"
    assert resolve_instruction(None, checkpoint) == "Find the memory"
    assert resolve_instruction(None, None) == resolve_instruction(None, "  ") == DEFAULT_INSTRUCTION
    assert resolve_instruction(None) == DEFAULT_INSTRUCTION


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_has_the_model_ref_the_protocol_declares(name):
    model, options = {
        "local": ("/models/x", {}),
        "hosted": ("served-model", {"base_url": "http://127.0.0.1:9", "api_key": "k"}),
    }[name]
    backend, _ignored = create_backend(name, model, options)
    assert backend.model_ref == model
