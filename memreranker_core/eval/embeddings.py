"""Sentence-transformers embeddings for the dense first stage, cached on disk per conversation.

A cache entry is one ``.npy`` file (float32, one row per text) named by the SHA-256 of the model id and the exact
texts, in order (each length-prefixed, so two different text lists never share a name), under
``<cache dir>/<model slug>/``. An entry is used only if it is a finite float32 matrix with one unit-length (or
zero) row per text and the model's width (from ``dimension.txt``, written beside the entries when the model runs,
else the width this embedder already saw); a damaged, truncated or mismatched entry is logged and recomputed.
A conversation's turns are one entry and its questions another, so a second run with the same model and the same
rendered text loads the vectors and never loads the model. The model id is the ``--embedding-model`` string as
given (a hub id, or a local folder's resolved path): if you overwrite a local folder's weights, clear its cache
folder.

The default cache folder is ``$MEMRERANKER_CACHE/embeddings``, else ``$XDG_CACHE_HOME/memreranker/embeddings``,
else ``~/.cache/memreranker/embeddings``.

Example:
    >>> embedder = CachedEmbedder("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> embedder.embed(["Caroline went to a support group."]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memreranker_core._optional import require
from memreranker_core.errors import ConfigurationError, InvalidInputError

logger = logging.getLogger(__name__)

#: A small, widely used English embedding model (384 dimensions, 22M parameters).
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_CACHE_VERSION = "v2"
#: How far from 1 a cached row's length may be (rows are L2-normalized in float32).
_NORM_TOLERANCE = 1e-3
_WIDTH_FILE = "dimension.txt"


def default_cache_dir() -> Path:
    """Where embeddings are cached when no ``cache_dir`` is given (see the module docstring)."""
    if os.environ.get("MEMRERANKER_CACHE"):
        return Path(os.environ["MEMRERANKER_CACHE"]) / "embeddings"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memreranker" / "embeddings"


def model_id(model: str) -> str:
    """The cache's name for ``model``: a local folder's resolved path, else the hub id as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def cache_key(model: str, texts: Sequence[str]) -> str:
    """The SHA-256 (hex) of the model id and the texts, in order, each length-prefixed; the cache file's name.

    Example:
        >>> cache_key("m", ["a\\0b", "c"]) != cache_key("m", ["a", "b\\0c"])
        True
    """
    digest = hashlib.sha256(_CACHE_VERSION.encode())
    for part in (model_id(model), *texts):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    digest.update(len(texts).to_bytes(8, "big"))
    return digest.hexdigest()


def _load_model(model: str, device: str | None) -> Any:
    require("sentence_transformers", extra="local", purpose="The dense first stage")
    from sentence_transformers import SentenceTransformer

    logger.info("loading embedding model %s", model)
    try:
        return SentenceTransformer(model, device=device)
    except (OSError, ValueError) as exc:  # missing folder or hub id; offline mode refusing a download
        raise ConfigurationError(
            f"could not load the embedding model {model!r} ({exc}); pass a sentence-transformers hub id or local "
            "folder with --embedding-model (offline, set HF_HUB_OFFLINE=1 and use a downloaded folder)"
        ) from exc


@dataclass(frozen=True)
class CachedEmbedder:
    """L2-normalized sentence embeddings with an on-disk cache; the model loads on the first cache miss.

    Attributes:
        model: A sentence-transformers hub id or local folder.
        cache_dir: The cache folder (``None``: ``default_cache_dir()``).
        device: Torch device for the model (``None``: sentence-transformers' choice, a GPU when there is one).
        batch_size: Texts per encoder batch.

    Example:
        >>> CachedEmbedder("sentence-transformers/all-MiniLM-L6-v2").embed(["a", "b"]).shape  # doctest: +SKIP
        (2, 384)
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    cache_dir: str | None = None
    device: str | None = None
    batch_size: int = 64
    _loaded: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigurationError(
                f"the embedding model must be a hub id or a folder, e.g. {DEFAULT_EMBEDDING_MODEL}, not {self.model!r}"
            )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be a whole number >= 1, not {self.batch_size!r}")

    @property
    def folder(self) -> Path:
        """This model's cache folder."""
        root = Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id(self.model)).strip("_")[-100:] or "model"
        return root / slug

    def embed(self, texts: Sequence[str]) -> Any:
        """A float32 numpy array, one L2-normalized row per text, from the cache or the model (then cached)."""
        import numpy as np

        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        path = self.folder / f"{cache_key(self.model, texts)}.npy"
        cached = self._cached(path, len(texts))
        if cached is not None:
            return cached
        if "model" not in self._loaded:  # loaded once per embedder, and only on a cache miss
            self._loaded["model"] = _load_model(self.model, self.device)
        encoder = self._loaded["model"]
        vectors = encoder.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ).astype(np.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(partial, vectors)
        os.replace(partial, path)  # atomic: a crash never leaves a truncated entry
        self._remember_width(int(vectors.shape[1]))
        return vectors

    def _cached(self, path: Path, count: int) -> Any:
        """The entry at ``path`` when it is usable for ``count`` texts, else ``None`` (a bad one is logged)."""
        import numpy as np

        if not path.is_file():
            return None
        try:
            vectors = np.load(path, allow_pickle=False)
        except Exception as exc:  # garbage, a truncated file, pickled objects: any unreadable entry is recomputed
            problem = f"unreadable: {type(exc).__name__}"
        else:
            problem = _problem(vectors, count, self._width())
        if problem is not None:
            logger.warning("ignoring the embedding cache file %s (%s); computing it again", path, problem)
            return None
        logger.debug("embedding cache hit: %s", path)
        self._loaded.setdefault("width", int(vectors.shape[1]))
        return vectors

    def _width(self) -> int | None:
        """The model's vector width: remembered, or from the folder's ``dimension.txt``; ``None`` if unknown."""
        if "width" not in self._loaded:
            try:
                width = int((self.folder / _WIDTH_FILE).read_text(encoding="ascii").strip())
            except (OSError, ValueError, UnicodeError):
                return None
            if width > 0:
                self._loaded["width"] = width
        return self._loaded.get("width")

    def _remember_width(self, width: int) -> None:
        """Keep the model's own width, for this embedder and in ``dimension.txt`` for later runs."""
        self._loaded["width"] = width
        target = self.folder / _WIDTH_FILE
        partial = target.with_name(f"{_WIDTH_FILE}.{os.getpid()}.tmp")
        partial.write_text(f"{width}\n", encoding="ascii")
        os.replace(partial, target)


def _problem(vectors: Any, count: int, width: int | None) -> str | None:
    """What makes ``vectors`` unusable as the embeddings of ``count`` texts, or ``None``."""
    import numpy as np

    if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32:
        return f"not a float32 array but {getattr(vectors, 'dtype', type(vectors).__name__)}"
    if vectors.ndim != 2 or vectors.shape[0] != count:
        return f"shape {vectors.shape}, expected ({count}, width)"
    if width is not None and vectors.shape[1] != width:
        return f"vectors of width {vectors.shape[1]}, the model's are {width}"
    if not np.isfinite(vectors).all():
        return "vectors that are not finite (NaN or infinity)"
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all((np.abs(norms - 1.0) <= _NORM_TOLERANCE) | (norms == 0.0)):
        return "vectors that are not unit length"
    return None
