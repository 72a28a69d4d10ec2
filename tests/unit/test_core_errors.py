"""Bad input gets a typed error whose message says how to fix it; nothing loads for nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from memreranker_core import MemReranker, errors
from memreranker_core.errors import ConfigurationError, InvalidInputError


@pytest.fixture
def unloaded():
    """A local reranker whose model does not exist: any attempt to load it would fail loudly."""
    return MemReranker(backend="local", model="/nonexistent/memreranker-model", device="cpu")


def test_empty_document_list_returns_empty_without_loading_the_model(unloaded):
    assert unloaded.rerank("query", []) == []
    assert unloaded.score("query", ()) == []
    with pytest.raises(errors.MemRerankerError):  # the control: loading fails, so the calls above never loaded
        unloaded.warm_up()


async def test_empty_document_list_returns_empty_async(unloaded):
    assert await unloaded.arerank("query", []) == []


def test_none_document_raises_invalid_input_naming_its_position(unloaded):
    with pytest.raises(InvalidInputError, match=r"documents\[1\].*NoneType.*Replace None"):
        unloaded.rerank("query", ["fine", None])


def test_non_string_query_raises_invalid_input(unloaded):
    with pytest.raises(InvalidInputError, match="query must be a string, not int"):
        unloaded.score(42, ["doc"])


def test_blank_query_raises_invalid_input(unloaded):
    with pytest.raises(InvalidInputError, match="query is empty"):
        unloaded.score("   ", ["doc"])


def test_a_string_instead_of_a_document_list_raises(unloaded):
    with pytest.raises(InvalidInputError, match="wrap a single document in a list"):
        unloaded.score("query", "just one document")


@pytest.mark.parametrize("top_n", [0, -3])
def test_top_n_below_one_raises_and_says_to_use_none(unloaded, top_n):
    with pytest.raises(InvalidInputError, match=r"top_n must be > 0, but got -?[0-9]+; use None"):
        unloaded.rerank("query", ["doc"], top_n=top_n)


@pytest.mark.parametrize("top_n", [True, 2.5, "3"])
def test_top_n_of_the_wrong_type_raises(unloaded, top_n):
    with pytest.raises(InvalidInputError, match="top_n must be a whole number > 0"):
        unloaded.rerank("query", ["doc"], top_n=top_n)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "0.5", True])
def test_threshold_outside_zero_one_raises(unloaded, threshold):
    with pytest.raises(InvalidInputError, match="score_threshold must"):
        unloaded.rerank("query", ["doc"], score_threshold=threshold)


def test_invalid_input_errors_are_also_value_and_type_errors():
    assert issubclass(InvalidInputError, ValueError) and issubclass(InvalidInputError, TypeError)
    assert issubclass(ConfigurationError, ValueError)


def test_only_transient_hosted_failures_are_retryable_and_a_cancelled_call_is_not():
    classes = {getattr(errors, name) for name in errors.__all__} - {errors.RetryableError}
    retryable = {cls for cls in classes if issubclass(cls, errors.RetryableError)}
    assert retryable == {
        errors.RateLimitError,
        errors.ServerError,
        errors.ServiceTimeoutError,
        errors.ServiceConnectionError,
    }
    assert issubclass(errors.CallCancelledError, errors.BackendError)  # local calls are stopped too
    assert not issubclass(errors.CallCancelledError, errors.HostedBackendError)
    assert not issubclass(errors.CallCancelledError, errors.RetryableError)
    assert issubclass(errors.RetryableError, errors.HostedBackendError)  # existing handlers keep catching them


def test_unknown_backend_raises_configuration_error_listing_the_choices():
    with pytest.raises(ConfigurationError, match=r"unknown backend 'gpu'.*'local'.*'hosted'"):
        MemReranker(backend="gpu")


def test_backend_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEMRERANKER_BACKEND", "nonsense")
    with pytest.raises(ConfigurationError, match="MEMRERANKER_BACKEND"):
        MemReranker()


def test_unknown_option_raises_with_the_closest_known_name():
    with pytest.raises(ConfigurationError, match="'devcie' \\(did you mean 'device'\\?\\)"):
        MemReranker(backend="local", devcie="cpu")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_length": 0}, "max_length must be a whole number >= 16"),
        ({"batch_tokens": -1}, "batch_tokens must be a whole number >= 1"),
        ({"dtype": "int8"}, "dtype must be one of"),
        ({"device": 0}, "device must be a device string"),
        ({"model": 3.14}, "model must be a hub id, a local path or a sentence-transformers CrossEncoder"),
    ],
)
def test_invalid_local_options_raise_configuration_error(options, message):
    with pytest.raises(ConfigurationError, match=message):
        MemReranker(backend="local", **options)


def test_invalid_document_template_raises_at_construction():
    with pytest.raises(ConfigurationError, match="must contain \\{text\\}"):
        MemReranker(backend="local", document_template="[{date}] {speaker}")
    with pytest.raises(ConfigurationError, match="named fields only"):
        MemReranker(backend="local", document_template="{} {text}")


def test_document_missing_a_template_field_raises_naming_the_field(unloaded):
    reranker = MemReranker(backend="local", model="/nonexistent", document_template="[{date}] {text}")
    with pytest.raises(InvalidInputError, match=r"needs the field\(s\) \['date'\]"):
        reranker.score("query", [{"text": "hello", "speaker": "Jon"}])


def test_context_must_be_a_list_of_turns(unloaded):
    with pytest.raises(InvalidInputError, match="context must be a list"):
        unloaded.score("query", ["doc"], context="Melanie: hi")
    with pytest.raises(InvalidInputError, match="context turn must be a string or a mapping"):
        unloaded.score("query", ["doc"], context=[42])


def test_query_too_long_for_max_length_raises_with_the_fix(tiny_model_path):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", max_length=64)
    with pytest.raises(InvalidInputError, match="leaving no room for documents; shorten them or raise max_length"):
        reranker.score("why " * 100, ["doc"])


def test_missing_model_raises_model_load_error_naming_the_model_and_both_ways_out(unloaded):
    with pytest.raises(errors.ModelLoadError) as caught:
        unloaded.score("query", ["doc"])
    message = str(caught.value)
    assert "/nonexistent/memreranker-model" in message
    assert "MEMRERANKER_MODEL" in message and "backend='hosted'" in message


def test_offline_without_cached_model_raises_model_load_error(tmp_path):
    code = (
        "from memreranker_core import MemReranker, errors\n"
        "try:\n"
        "    MemReranker(model='IAAR-Shanghai/MemReranker-4B', device='cpu').score('q', ['d'])\n"
        "except errors.ModelLoadError as exc:\n"
        "    print('MODEL_LOAD_ERROR', exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "MEMRERANKER_MODEL": ""}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "MODEL_LOAD_ERROR" in result.stdout, result.stderr[-2000:]
    assert "IAAR-Shanghai/MemReranker-4B" in result.stdout
    assert "MEMRERANKER_MODEL" in result.stdout and "hosted" in result.stdout


def test_missing_extra_names_the_exact_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    reranker = MemReranker(backend="local", model="/nonexistent", device="cpu")
    # the package is installed from a clone (README), so the command is the editable install of the extra
    with pytest.raises(errors.MissingDependencyError, match=r'pip install -e "\.\[local\]"'):
        reranker.warm_up()


@pytest.mark.parametrize(
    ("call", "where"),
    [
        ({"query": "When?\ud800"}, "the query"),
        ({"instruction": "Find\udc80 it"}, "the instruction"),
        ({"context": ["fine", "broken \ud83d"]}, "context turn 1"),
    ],
)
def test_a_lone_surrogate_in_the_query_instruction_or_context_is_a_typed_error_naming_it(unloaded, call, where):
    query = call.pop("query", "When did Caroline go?")
    with pytest.raises(InvalidInputError, match=where):
        unloaded.score(query, ["Caroline went yesterday."], **call)
