"""The random-weight checkpoints the benchmarks run on, built once and cached.

Each is ``memreranker_core.testing.build_random_model`` of one MemReranker shape (``tiny``, ``0.6b``, ``4b``),
optionally with fewer layers (CPU runs), saved as a sentence-transformers ``CrossEncoder`` checkpoint so that our
backend, sentence-transformers and the card's recipe all run the same model object.

Example:
    >>> path = benchmark_checkpoint("tiny", model_dir="/tmp/memreranker-bench")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

#: Where checkpoints are built when no folder is given.
DEFAULT_MODEL_DIR = Path(tempfile.gettempdir()) / "memreranker-bench"


def checkpoint_name(shape: str, layers: int | None = None) -> str:
    """The cache folder name of a shape, e.g. ``0.6b-L2`` for two layers of the 0.6B architecture.

    Example:
        >>> checkpoint_name("0.6b", layers=2)
        '0.6b-L2'
    """
    return shape + (f"-L{layers}" if layers else "")


def benchmark_checkpoint(shape: str, *, layers: int | None = None, model_dir: str | Path | None = None) -> Path:
    """The folder of the random ``shape`` checkpoint (``layers`` decoder layers if given), building it if missing.

    The 4B shape is saved in bfloat16 (half the disk and load time); the others in float32.
    """
    from memreranker_core.testing import build_random_model

    path = Path(model_dir or DEFAULT_MODEL_DIR) / checkpoint_name(shape, layers)
    if not (path / "modules.json").is_file():
        logger.info("building random %s checkpoint at %s", checkpoint_name(shape, layers), path)
        build_random_model(
            path,
            shape=shape,
            seed=0,
            cross_encoder=True,
            config_overrides={"num_hidden_layers": layers} if layers else None,
            weights_dtype="bfloat16" if shape == "4b" else "float32",
        )
    return path
