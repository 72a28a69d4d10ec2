"""What a careless or hostile caller gives the three adapters: ``None`` or plain strings for documents, coerced or
unknown constructor arguments, a key in a validation error, a string where a list or a ``Secret`` belongs. Each is
a typed error naming the fix, never a silently different behaviour; plus the framework conventions each adapter
follows (LlamaIndex spans, Haystack ``meta``, ``scale_score``, ``close`` and empty content)."""

from __future__ import annotations

import asyncio
import math

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
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.postprocessor.memreranker import MemRerankerPostprocessor

from memreranker_core.errors import ConfigurationError, InvalidInputError
from tests.support.memories import MEMORIES, QUERY, SECRET


def langchain_documents() -> list[LangChainDocument]:
    return [LangChainDocument(page_content=text, metadata=dict(meta), id=i) for i, text, meta in MEMORIES]


def haystack_documents() -> list[HaystackDocument]:
    return [HaystackDocument(id=i, content=text, meta=dict(meta)) for i, text, meta in MEMORIES]


def llamaindex_nodes() -> list[NodeWithScore]:
    return [NodeWithScore(node=TextNode(id_=i, text=text, metadata=dict(meta))) for i, text, meta in MEMORIES]


def calls(tiny_reranker):
    """(sync call, async call) of each adapter on ``documents``."""
    compressor = MemRerankerCompressor(reranker=tiny_reranker)
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker)
    ranker = MemRerankerRanker(reranker=tiny_reranker)
    return {
        "langchain": (
            lambda docs: compressor.compress_documents(docs, QUERY),
            lambda docs: compressor.acompress_documents(docs, QUERY),
        ),
        "llamaindex": (
            lambda docs: postprocessor.postprocess_nodes(docs, query_str=QUERY),
            lambda docs: postprocessor.apostprocess_nodes(docs, query_str=QUERY),
        ),
        "haystack": (
            lambda docs: ranker.run(query=QUERY, documents=docs),
            lambda docs: ranker.run_async(query=QUERY, documents=docs),
        ),
    }


# ----------------------------------------------------------------- documents


@pytest.mark.parametrize("adapter", ["langchain", "llamaindex", "haystack"])
async def test_documents_none_is_a_typed_error_sync_and_async(tiny_reranker, adapter):
    sync, run_async = calls(tiny_reranker)[adapter]
    with pytest.raises(InvalidInputError, match=r"documents must be a list \(use \[\] for none\), not None"):
        sync(None)
    with pytest.raises(InvalidInputError, match="not None"):
        await run_async(None)


@pytest.mark.parametrize(
    ("adapter", "wrong", "hint"),
    [
        ("langchain", ["Caroline went to the group.", "It rained."], r"documents\[0\] is str, not Document: wrap"),
        ("llamaindex", [TextNode(text="a node, not a NodeWithScore")], r"documents\[0\] is TextNode, not NodeWith"),
        ("haystack", ["Caroline went to the group."], r"documents\[0\] is str, not Document: wrap"),
        ("langchain", "Caroline went to the group.", "wrap a single one in a list"),
        ("haystack", HaystackDocument(content="one"), "wrap a single one in a list"),
    ],
)
async def test_plain_strings_or_a_single_document_are_a_typed_error_naming_the_fix(tiny_reranker, adapter, wrong, hint):
    sync, run_async = calls(tiny_reranker)[adapter]
    with pytest.raises(InvalidInputError, match=hint):
        sync(wrong)
    with pytest.raises(InvalidInputError, match=hint):
        await run_async(wrong)


def test_a_generator_of_documents_is_read_once_and_ranked(tiny_reranker):
    compressor = MemRerankerCompressor(reranker=tiny_reranker, top_n=None)
    ranked = compressor.compress_documents((d for d in langchain_documents()), QUERY)
    assert sorted(d.id for d in ranked) == ["m1", "m2", "m3", "m4", "m5"]


# ----------------------------------------------------------------- constructor arguments


@pytest.mark.parametrize("adapter", [MemRerankerCompressor, MemRerankerPostprocessor])
@pytest.mark.parametrize(
    "given",
    [{"top_n": True}, {"top_n": "2"}, {"top_n": 2.0}, {"score_threshold": "0.5"}, {"score_threshold": True}],
)
def test_counts_and_thresholds_are_not_coerced(tiny_reranker, adapter, given):
    with pytest.raises(ValueError, match=next(iter(given))):
        adapter(reranker=tiny_reranker, **given)


@pytest.mark.parametrize("adapter", [MemRerankerCompressor, MemRerankerPostprocessor])
def test_whole_number_thresholds_and_per_call_bools_are_handled(tiny_reranker, adapter):
    assert adapter(reranker=tiny_reranker, score_threshold=1).score_threshold == 1.0  # 1 is a valid threshold
    compressor = MemRerankerCompressor(reranker=tiny_reranker)
    with pytest.raises(InvalidInputError, match="top_n must be a whole number"):
        compressor.compress_documents(langchain_documents(), QUERY, top_n=True)


def test_llamaindex_refuses_unknown_constructor_arguments(tiny_reranker):
    with pytest.raises(ValueError, match="topn"):
        MemRerankerPostprocessor(reranker=tiny_reranker, topn=2)
    with pytest.raises(ValueError, match="api_keys"):
        MemRerankerPostprocessor(backend="local", api_keys=SECRET)


def test_validation_errors_never_echo_the_key(tiny_model_path):
    for bad in ({"top_n": "x"}, {"unknown": 1}, {"metadata_fields": 3}):
        with pytest.raises(ValueError) as caught:
            MemRerankerCompressor(backend="local", model=str(tiny_model_path), api_key=SECRET, **bad)
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    with pytest.raises(ValueError) as caught:
        MemRerankerCompressor(backend="local", api_key=SECRET, reranker_options=SECRET)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        MemRerankerPostprocessor(backend="local", api_key=SECRET, top_n="x")
    assert SECRET not in str(caught.value)


def test_a_single_string_of_metadata_keys_is_refused_not_split_into_characters(tiny_reranker):
    with pytest.raises(
        ConfigurationError, match=r"meta_fields_to_embed must be a list of metadata keys, such as \['date'\]"
    ):
        MemRerankerRanker(reranker=tiny_reranker, meta_fields_to_embed="date")
    for adapter in (MemRerankerCompressor, MemRerankerPostprocessor):
        with pytest.raises(ValueError, match="metadata_fields"):
            adapter(reranker=tiny_reranker, metadata_fields="date")


def test_haystack_api_key_as_a_plain_string_names_the_secret_constructors():
    with pytest.raises(ConfigurationError, match=r"api_key must be a haystack Secret.*Secret\.from_token") as caught:
        MemRerankerRanker(backend="hosted", api_key=SECRET)
    assert SECRET not in str(caught.value)
    assert MemRerankerRanker(backend="local", api_key=None).to_dict()["init_parameters"]["api_key"] is None


# ----------------------------------------------------------------- LlamaIndex: rerank events inside a span


class SpanRecorder(BaseEventHandler):
    """A real LlamaIndex event handler that keeps each rerank event's span id."""

    seen: list = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "SpanRecorder"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
            self.seen.append((type(event).__name__, event.span_id))


async def test_llamaindex_rerank_events_carry_the_span_of_the_call_sync_and_async(tiny_reranker):
    recorder = SpanRecorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=2)
    try:
        postprocessor.postprocess_nodes(llamaindex_nodes(), query_str=QUERY)
        await postprocessor.apostprocess_nodes(llamaindex_nodes(), query_str=QUERY)
    finally:
        root.event_handlers.remove(recorder)
    assert [name for name, _ in recorder.seen] == ["ReRankStartEvent", "ReRankEndEvent"] * 2
    sync_spans, async_spans = {s for _, s in recorder.seen[:2]}, {s for _, s in recorder.seen[2:]}
    assert len(sync_spans) == len(async_spans) == 1 and None not in sync_spans | async_spans
    (sync_span,), (async_span,) = sync_spans, async_spans
    assert sync_span.startswith("MemRerankerPostprocessor._postprocess_nodes-")
    assert async_span.startswith("MemRerankerPostprocessor._apostprocess_nodes-")


# ----------------------------------------------------------------- Haystack conventions


async def test_haystack_content_none_is_scored_as_empty_text_like_haystacks_own_rankers(tiny_reranker):
    documents = [*haystack_documents(), HaystackDocument(id="image", content=None, meta={"date": "9 June 2023"})]
    ranker = MemRerankerRanker(reranker=tiny_reranker, top_k=10)
    scored = {d.id: d.score for d in ranker.run(query=QUERY, documents=documents)["documents"]}
    assert scored["image"] == pytest.approx(tiny_reranker.score(QUERY, [""])[0], abs=1e-6)
    assert len(scored) == 6
    with_meta = MemRerankerRanker(reranker=tiny_reranker, meta_fields_to_embed=["date"])
    result = await with_meta.run_async(query=QUERY, documents=documents)
    image = next(d for d in result["documents"] if d.id == "image")
    assert image.content is None  # the output is the caller's document, not the scored text
    assert image.score == pytest.approx(tiny_reranker.score(QUERY, ["9 June 2023\n"])[0], abs=1e-6)


async def test_haystack_output_has_meta_with_the_model_and_backend(tiny_reranker, tiny_model_path):
    ranker = MemRerankerRanker(reranker=tiny_reranker, top_k=2)
    expected = {"model": str(tiny_model_path), "backend": "local"}
    assert ranker.run(query=QUERY, documents=haystack_documents())["meta"] == expected
    assert (await ranker.run_async(query=QUERY, documents=haystack_documents()))["meta"] == expected
    assert ranker.run(query=QUERY, documents=[]) == {"documents": [], "meta": expected}
    pipeline = Pipeline()
    pipeline.add_component("ranker", ranker)
    assert pipeline.run({"ranker": {"query": QUERY, "documents": haystack_documents()}})["ranker"]["meta"] == expected


def test_haystack_scale_score_false_returns_raw_log_odds(tiny_reranker):
    documents = haystack_documents()
    raw = MemRerankerRanker(reranker=tiny_reranker, scale_score=False, top_k=10)
    out = raw.run(query=QUERY, documents=documents)["documents"]
    logits = dict(
        zip(
            [d.id for d in documents],
            tiny_reranker.score(QUERY, [d.content for d in documents], return_logits=True),
            strict=True,
        )
    )
    assert [(d.id, d.score) for d in out] == [
        (i, pytest.approx(logits[i], abs=1e-5)) for i in sorted(logits, key=lambda i: -logits[i])
    ]
    assert any(d.score < 0 for d in out) or any(d.score > 1 for d in out)  # really log-odds, not probabilities
    probabilities = MemRerankerRanker(reranker=tiny_reranker, top_k=10).run(query=QUERY, documents=documents)
    for document in probabilities["documents"]:
        assert document.score == pytest.approx(1 / (1 + math.exp(-logits[document.id])), abs=1e-6)
    threshold = sorted(d.score for d in probabilities["documents"])[2]  # the threshold stays a probability
    kept = raw.run(query=QUERY, documents=documents, score_threshold=threshold)["documents"]
    assert len(kept) == 3
    assert MemRerankerRanker.from_dict(raw.to_dict()).scale_score is False


async def test_haystack_close_releases_an_owned_reranker_and_leaves_a_shared_one(tiny_model_path, tiny_reranker):
    owned = MemRerankerRanker(backend="local", model=str(tiny_model_path), device="cpu")
    await owned.warm_up_async()
    loaded = owned.reranker.backend.loaded
    owned.close()
    assert owned.reranker.backend.loaded is not loaded  # released, and loaded again on use
    loaded = owned.reranker.backend.loaded
    await owned.close_async()
    assert owned.reranker.backend.loaded is not loaded
    assert len(owned.run(query=QUERY, documents=haystack_documents())["documents"]) == 5  # usable after close

    shared_model = tiny_reranker.backend.loaded
    shared = MemRerankerRanker(reranker=tiny_reranker)
    shared.close()
    await shared.close_async()
    assert tiny_reranker.backend.loaded is shared_model  # the owner's reranker stays loaded


def test_haystack_async_warm_up_and_close_run_in_a_running_loop(tiny_reranker):
    ranker = MemRerankerRanker(reranker=tiny_reranker)

    async def main() -> list[str]:
        await ranker.warm_up_async()
        result = await ranker.run_async(query=QUERY, documents=haystack_documents())
        await ranker.close_async()
        return [d.id for d in result["documents"]]

    assert sorted(asyncio.run(main())) == ["m1", "m2", "m3", "m4", "m5"]


def test_haystack_token_secret_is_still_refused_by_to_dict():
    with pytest.raises(ValueError, match="token"):
        MemRerankerRanker(backend="local", api_key=Secret.from_token(SECRET)).to_dict()
