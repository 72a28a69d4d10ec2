"""What the three adapter test suites share: expected rankings, snapshots, an unloadable reranker, and one
``scoring_backend`` fixture that runs a test against the local tiny model and the loopback hosted server.

tests/integration/conftest.py makes the fixture available to every integration test;
each test using it runs once per backend, with ``scoring_backend.name`` ``"local"`` or ``"hosted"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from memreranker_core import MemReranker
from tests.support.memories import QUERY, SECRET

#: Options given to a shared reranker in the "with options" round trips (none is a default).
LOCAL_OPTIONS = {"max_length": 512, "dtype": "float32"}
HOSTED_OPTIONS = {"read_timeout": 5.0, "max_retries": 1}


def ranking(ids: Sequence[str], scores: Sequence[float]) -> list[tuple[str, float]]:
    """``(id, score)`` best first; ties keep input order, as the core sorts."""
    order = sorted(range(len(ids)), key=lambda i: -scores[i])
    return [(ids[i], scores[i]) for i in order]


def approx_ranking(expected: Sequence[tuple[str, float]], abs: float = 1e-6) -> list[tuple[str, Any]]:
    """``expected`` with each score compared to ``abs``."""
    return [(item_id, pytest.approx(score, abs=abs)) for item_id, score in expected]


def snapshot(items: Sequence[Any], *fields: Callable[[Any], Any]) -> list[tuple[Any, ...]]:
    """What a test checks is unchanged after a call: ``repr`` of each field of each item."""
    return [tuple(repr(field(item)) for field in fields) for item in items]


def unloadable_reranker(folder: Path) -> MemReranker:
    """A local reranker whose model cannot load (an empty folder): any call that needs the model raises."""
    return MemReranker(backend="local", model=str(folder), device="cpu")


@dataclass
class ScoringBackend:
    """One backend the adapters are tested against.

    Attributes:
        name: ``"local"`` (the tiny model on CPU) or ``"hosted"`` (the loopback ``RerankServer``).
        settings: Adapter arguments that select this backend (``backend``, ``model``/``base_url``, ...).
        server: The running ``RerankServer`` (hosted), else ``None``.
        tiny_reranker: The session's loaded tiny reranker (local), else ``None``.
    """

    name: str
    settings: dict[str, Any]
    server: Any = None
    tiny_reranker: MemReranker | None = None

    def shared(self, **options: Any) -> MemReranker:
        """A ``MemReranker`` on this backend (the key passed explicitly for hosted), with ``options``; local without
        options: the session's loaded tiny reranker."""
        if self.name == "local" and not options and self.tiny_reranker is not None:
            return self.tiny_reranker
        if self.name == "hosted":
            return MemReranker(**self.settings, api_key=SECRET, **options)
        return MemReranker(**self.settings, **options)

    @property
    def options(self) -> dict[str, Any]:
        """Non-default options this backend takes (for round trips "with options")."""
        return dict(HOSTED_OPTIONS if self.name == "hosted" else LOCAL_OPTIONS)

    def scores(self, texts: Sequence[str]) -> list[float]:
        """Reference scores for ``texts``: the core on the tiny model, or what the server computes."""
        if self.name == "hosted":
            from tests.support.rerank_server import overlap_score

            return overlap_score(QUERY, list(texts))
        assert self.tiny_reranker is not None
        return self.tiny_reranker.score(QUERY, list(texts))

    def untouched_reranker(self, folder: Path) -> MemReranker:
        """A reranker that shows whether a call reached the model: local, one whose model cannot load; hosted,
        one on the server (whose requests are counted). Check with ``assert_model_never_used``."""
        return unloadable_reranker(folder) if self.name == "local" else self.shared()

    def assert_model_never_used(self, reranker: MemReranker) -> None:
        """Nothing reached the model: no request (hosted), or the unloadable model was never needed (local: the
        control call below raises, so an earlier call that needed the model would have raised too)."""
        from memreranker_core.errors import MemRerankerError

        if self.server is not None:
            assert self.server.requests == []
            return
        with pytest.raises(MemRerankerError):
            reranker.score(QUERY, ["a memory"])


@pytest.fixture(params=["local", "hosted"])
def scoring_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ScoringBackend]:
    """The same adapter test against the local tiny model and the hosted loopback server (key from the env)."""
    if request.param == "local":
        model = request.getfixturevalue("tiny_model_path")
        yield ScoringBackend(
            "local",
            {"backend": "local", "model": str(model), "device": "cpu"},
            tiny_reranker=request.getfixturevalue("tiny_reranker"),
        )
        return
    pytest.importorskip("httpx")
    from tests.support.rerank_server import RerankServer

    monkeypatch.setenv("MEMOS_API_KEY", SECRET)  # adapters must read it from the environment and send it
    with RerankServer(api_key=SECRET) as server:
        yield ScoringBackend("hosted", {"backend": "hosted", "base_url": server.base_url}, server=server)
