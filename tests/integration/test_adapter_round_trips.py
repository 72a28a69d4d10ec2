"""Every adapter's serialization, copy and pickle, against both backends (the tiny local model and the loopback
hosted server): a shared reranker, built with and without options, serializes (LangChain ``model_dump`` and
``model_dump_json``, LlamaIndex ``to_dict``/``to_json``, Haystack ``to_dict`` and Pipeline YAML) and reloads to an
equal ``MemReranker.settings()``, with no resolved default pinned and never a key."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")
pytest.importorskip("haystack")

from haystack import Document as HaystackDocument
from haystack import Pipeline
from haystack.utils import Secret
from haystack_integrations.components.rankers.memreranker import MemRerankerRanker
from langchain_core.documents import Document as LangChainDocument
from langchain_memreranker import MemRerankerCompressor
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.postprocessor.memreranker import MemRerankerPostprocessor

from memreranker_core import MemReranker
from memreranker_core.adapter_support import OWN_ARGUMENTS, SETTING_NAMES
from memreranker_core.backends import options_class
from tests.support.adapters import approx_ranking
from tests.support.memories import MEMORIES, QUERY, SECRET

# ----------------------------------------------------------------- one entry per adapter and serialization


def rank_langchain(compressor: MemRerankerCompressor) -> list[tuple[str, float]]:
    documents = [LangChainDocument(page_content=text, metadata=dict(meta), id=i) for i, text, meta in MEMORIES]
    return [(d.id, d.metadata["relevance_score"]) for d in compressor.compress_documents(documents, QUERY)]


def rank_llamaindex(postprocessor: MemRerankerPostprocessor) -> list[tuple[str, float]]:
    nodes = [NodeWithScore(node=TextNode(id_=i, text=text, metadata=dict(meta))) for i, text, meta in MEMORIES]
    return [(n.node.node_id, n.score) for n in postprocessor.postprocess_nodes(nodes, query_str=QUERY)]


def rank_haystack(ranker: MemRerankerRanker) -> list[tuple[str, float]]:
    documents = [HaystackDocument(id=i, content=text, meta=dict(meta)) for i, text, meta in MEMORIES]
    return [(d.id, d.score) for d in ranker.run(query=QUERY, documents=documents)["documents"]]


def langchain_dump(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerCompressor(reranker=reranker, top_n=2, metadata_fields=["date"])
    data = original.model_dump()
    assert "reranker" not in data and "api_key" not in data
    return original, repr(data), MemRerankerCompressor(**data)


def langchain_json(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerCompressor(reranker=reranker, top_n=2, metadata_fields=["date"])
    text = original.model_dump_json()
    return original, text, MemRerankerCompressor(**json.loads(text))


def llamaindex_dict(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerPostprocessor(reranker=reranker, top_n=2, metadata_fields=["date"])
    data = original.to_dict()
    assert data["class_name"] == "MemRerankerPostprocessor"
    return original, repr(data), MemRerankerPostprocessor.from_dict(data)


def llamaindex_json(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerPostprocessor(reranker=reranker, top_n=2, metadata_fields=["date"])
    text = original.to_json()
    return original, text, MemRerankerPostprocessor.from_json(text)


def haystack_dict(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerRanker(reranker=reranker, top_k=2, meta_fields_to_embed=["date"])
    data = original.to_dict()
    assert data["init_parameters"]["api_key"] == {"type": "env_var", "env_vars": ["MEMOS_API_KEY"], "strict": False}
    return original, repr(data), MemRerankerRanker.from_dict(data)


def haystack_yaml(reranker: MemReranker) -> tuple[Any, str, Any]:
    original = MemRerankerRanker(reranker=reranker, top_k=2, meta_fields_to_embed=["date"])
    pipeline = Pipeline()
    pipeline.add_component("ranker", original)
    text = pipeline.dumps()
    return original, text, Pipeline.loads(text).get_component("ranker")


SERIALIZATIONS: dict[str, tuple[Callable[[MemReranker], tuple[Any, str, Any]], Callable[[Any], Any]]] = {
    "langchain-model_dump": (langchain_dump, rank_langchain),
    "langchain-model_dump_json": (langchain_json, rank_langchain),
    "llamaindex-to_dict": (llamaindex_dict, rank_llamaindex),
    "llamaindex-to_json": (llamaindex_json, rank_llamaindex),
    "haystack-to_dict": (haystack_dict, rank_haystack),
    "haystack-pipeline_yaml": (haystack_yaml, rank_haystack),
}


def adapter_fields(adapter: Any) -> tuple[Any, Any]:
    """The adapter's own (non-reranker) settings: its count and its metadata keys."""
    if isinstance(adapter, MemRerankerRanker):
        return adapter.top_k, adapter.meta_fields_to_embed
    return adapter.top_n, adapter.metadata_fields


def unset_option_names(backend: str, given: dict[str, Any]) -> list[str]:
    """Option names of ``backend`` that were not given and that no adapter argument carries: none may be written
    (Haystack writes ``api_key`` as its env-var reference, checked apart)."""
    own = set(SETTING_NAMES) | OWN_ARGUMENTS
    return [name for name in options_class(backend).specs() if name not in given and name not in own]


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("with_options", [False, True], ids=["no-options", "with-options"])
@pytest.mark.parametrize("serialization", list(SERIALIZATIONS))
def test_a_shared_reranker_round_trips_to_equal_settings_with_no_default_pinned(
    scoring_backend,
    serialization,
    with_options,
):
    options = scoring_backend.options if with_options else {}
    shared = scoring_backend.shared(**options)
    shared.score(QUERY, ["a memory", "another memory"])  # resolves the CPU token budget / opens the session
    assert shared.settings() == {**scoring_backend.settings, **options}  # only what was given
    dump, rank = SERIALIZATIONS[serialization]

    original, text, rebuilt = dump(shared)

    assert SECRET not in text and SECRET not in repr(original) and SECRET not in repr(rebuilt)
    for name in SETTING_NAMES:  # the adapter's own fields show the shared reranker's settings, and only those
        assert getattr(original, name) == shared.settings().get(name)
    for name in unset_option_names(scoring_backend.name, options):
        assert name not in text, f"{name} (a default) was written: {text}"
    assert rebuilt.reranker is not shared
    assert rebuilt.reranker.settings() == shared.settings()
    assert adapter_fields(rebuilt) == adapter_fields(original) == (2, ["date"])
    if (
        scoring_backend.name == "hosted" or not with_options
    ):  # (each local reload loads the model again: once is enough)
        assert rank(rebuilt) == approx_ranking(rank(original))  # the reloaded adapter scores the same


@pytest.mark.parametrize("base_url", ["https://host/v1?x=1", "loopback?x=1&y=a%2Fb"])
@pytest.mark.parametrize("serialization", list(SERIALIZATIONS))
def test_a_base_url_query_string_survives_every_serialization(serialization, base_url, monkeypatch):
    pytest.importorskip("httpx")
    from tests.support.rerank_server import RerankServer

    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    with RerankServer(api_key=SECRET) as server:
        url = base_url.replace("loopback", server.base_url)
        shared = MemReranker(backend="hosted", base_url=url, api_key=SECRET)
        _original, text, rebuilt = SERIALIZATIONS[serialization][0](shared)
        assert rebuilt.base_url == url
        assert rebuilt.reranker.settings() == {"backend": "hosted", "base_url": url}
        assert SECRET not in text


def test_adapter_settings_never_carry_a_secret_option_given_in_reranker_options(tiny_model_path):
    token = "hf_do_not_leak_31337"
    options = {"token": token, "max_length": 256}
    compressor = MemRerankerCompressor(backend="local", model=str(tiny_model_path), reranker_options=options)
    postprocessor = MemRerankerPostprocessor(backend="local", model=str(tiny_model_path), reranker_options=options)
    ranker = MemRerankerRanker(backend="local", model=str(tiny_model_path), reranker_options=options)
    for text in (compressor.model_dump_json(), repr(compressor), postprocessor.to_json(), repr(ranker.to_dict())):
        assert token not in text
    for adapter in (compressor, postprocessor, ranker):
        assert adapter.reranker_options == {"max_length": 256}


# ----------------------------------------------------------------- copies and pickles


def build_adapters(reranker: MemReranker) -> list[Any]:
    return [
        reranker,
        MemRerankerCompressor(reranker=reranker, top_n=2),
        MemRerankerPostprocessor(reranker=reranker, top_n=2),
        MemRerankerRanker(reranker=reranker, top_k=2),
    ]


def reranker_of(adapter: Any) -> MemReranker:
    return adapter if isinstance(adapter, MemReranker) else adapter.reranker


RANKERS = {
    MemReranker: lambda rr: [(str(r.index), r.score) for r in rr.rerank(QUERY, [t for _, t, _ in MEMORIES], top_n=2)],
    MemRerankerCompressor: rank_langchain,
    MemRerankerPostprocessor: rank_llamaindex,
    MemRerankerRanker: rank_haystack,
}


def test_deep_copies_share_the_loaded_model_and_score_the_same(scoring_backend):
    shared = scoring_backend.shared(**scoring_backend.options)
    for adapter in build_adapters(shared):
        clone = copy.deepcopy(adapter)
        assert clone is not adapter
        assert reranker_of(clone).backend is shared.backend  # the model is shared, never loaded twice
        assert reranker_of(clone).settings() == shared.settings()
        assert RANKERS[type(adapter)](clone) == RANKERS[type(adapter)](adapter)
        assert copy.copy(reranker_of(adapter)).backend is shared.backend


def test_pickles_carry_settings_never_the_key_and_reload_the_key_from_the_environment(
    scoring_backend,
    monkeypatch,
):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    shared = scoring_backend.shared(**scoring_backend.options)
    adapters = [
        *build_adapters(shared),
        MemRerankerRanker(**scoring_backend.settings, api_key=Secret.from_token(SECRET)),
    ]
    for position, adapter in enumerate(adapters):
        data = pickle.dumps(adapter)
        assert SECRET.encode() not in data
        loaded = pickle.loads(data)
        assert reranker_of(loaded).backend is not reranker_of(adapter).backend  # settings only: a fresh backend
        assert reranker_of(loaded).settings() == reranker_of(adapter).settings()
        if scoring_backend.name == "hosted" or position in (0, len(adapters) - 1):  # local: each one loads the model
            assert RANKERS[type(adapter)](loaded) == approx_ranking(RANKERS[type(adapter)](adapter))
    if scoring_backend.server is not None:  # the reloaded rerankers sent the key read from the environment
        headers = {name.lower(): value for name, value in scoring_backend.server.received[-1].headers.items()}
        assert headers["authorization"] == f"Token {SECRET}"
    compressor = pickle.loads(pickle.dumps(MemRerankerCompressor(reranker=shared, api_key=SECRET + "-explicit")))
    assert compressor.api_key is not None and compressor.api_key.get_secret_value() == SECRET  # from the env


def test_a_reranker_built_from_a_loaded_model_object_refuses_to_pickle(tiny_reranker):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder

    folder = tiny_reranker.settings()["model"]
    rr = MemReranker(backend="local", model=CrossEncoder(folder, device="cpu"), device="cpu")
    with pytest.raises(TypeError, match="loaded model object"):
        pickle.dumps(rr)
    assert copy.deepcopy(rr).backend is rr.backend  # a copy still works: it shares the model


def test_metadata_mode_survives_llamaindex_serialization(tiny_reranker):
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, metadata_mode=MetadataMode.NONE)
    assert MemRerankerPostprocessor.from_json(postprocessor.to_json()).metadata_mode == MetadataMode.NONE
