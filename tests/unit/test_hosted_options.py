"""Hosted backend construction: option checks, defaults from the environment, http:// safety, key secrecy."""

from __future__ import annotations

import json
import logging

import pytest

from memreranker_core import MemReranker, errors
from memreranker_core.backends.hosted.backend import HostedBackend
from memreranker_core.backends.hosted.options import DEFAULT_BASE_URL, HostedOptions
from memreranker_core.types import ScoreRequest
from tests.support.rerank_server import RerankServer

KEY = "sk-memos-SECRET-0123456789"
REQUEST = ScoreRequest(query="Where did Caroline go?", documents=("Caroline went to a support group.",), instruction="")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("MEMOS_API_KEY", raising=False)
    monkeypatch.delenv("MEMOS_BASE_URL", raising=False)


def test_defaults_are_the_memos_service_and_model():
    backend = HostedBackend()
    assert backend.describe()["base_url"] == DEFAULT_BASE_URL
    assert backend.url == DEFAULT_BASE_URL + "/rerank"
    assert backend.model == "memos-reranker-4b"
    assert backend.api_style == "memos"
    assert backend.max_documents_per_request == 100
    assert backend.options.max_request_tokens == 8000


def test_base_url_comes_from_memos_base_url(monkeypatch):
    monkeypatch.setenv("MEMOS_BASE_URL", "https://rerank.example.org/api/v1")
    assert HostedBackend().url == "https://rerank.example.org/api/v1/rerank"


def test_other_styles_send_no_model_unless_given_and_have_their_own_document_caps():
    assert HostedBackend(api_style="vllm", base_url="http://127.0.0.1:8000").model is None
    assert HostedBackend(api_style="tei", base_url="http://127.0.0.1:8080").max_documents_per_request == 32
    assert HostedBackend("my-reranker", api_style="vllm", base_url="http://127.0.0.1:8000").model == "my-reranker"


def test_options_given_as_none_take_their_defaults():
    backend = HostedBackend(api_key=None, base_url=None, api_style=None, read_timeout=None, oversize=None)
    assert backend.options.read_timeout == 30.0 and backend.options.oversize == "truncate"


@pytest.mark.parametrize(
    "options",
    [
        {"api_style": "openai"},
        {"connect_timeout": 0},
        {"read_timeout": -1},
        {"read_timeout": "30"},
        {"max_retries": -1},
        {"max_retries": 1.5},
        {"backoff_factor": float("inf")},
        {"max_concurrency": 0},
        {"max_request_tokens": 8},
        {"max_documents_per_request": True},
        {"oversize": "drop"},
        {"allow_insecure_http": "yes"},
        {"base_url": "ftp://example.org"},
        {"base_url": "https://example.org:notaport"},
        {"base_url": ""},
        {"api_key": 12345},
    ],
)
def test_bad_options_raise_configuration_error(options):
    with pytest.raises(errors.ConfigurationError):
        HostedBackend(**options)


def test_a_model_that_is_not_a_name_is_refused():
    with pytest.raises(errors.ConfigurationError, match="model name"):
        HostedBackend(model=3)


def test_unknown_options_are_refused_through_the_core():
    with pytest.raises(errors.ConfigurationError, match="max_retries"):
        MemReranker(backend="hosted", max_retry=3)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://gpu-box:8000", "http://memos.example.org/v1"])
def test_plain_http_to_another_host_needs_allow_insecure_http(url):
    with pytest.raises(errors.ConfigurationError, match="allow_insecure_http=True"):
        HostedBackend(base_url=url, api_style="vllm")
    assert HostedBackend(base_url=url, api_style="vllm", allow_insecure_http=True).options.base_url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_plain_http_to_loopback_is_allowed(url):
    assert HostedBackend(base_url=url, api_style="vllm").options.base_url == url


def test_a_missing_key_is_reported_at_call_time_not_at_construction():
    backend = HostedBackend()  # no key anywhere: construction still works
    with pytest.raises(errors.AuthenticationError, match="MEMOS_API_KEY") as caught:
        backend.score(REQUEST)
    assert "api_key" in str(caught.value)
    with pytest.raises(errors.AuthenticationError):
        backend.warm_up()


def test_the_key_is_read_from_memos_api_key_at_call_time(monkeypatch):
    backend = HostedBackend()
    assert backend.describe()["api_key_set"] is False
    monkeypatch.setenv("MEMOS_API_KEY", KEY)
    assert backend.describe()["api_key_set"] is True


def test_the_memos_key_is_never_used_for_another_service(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", KEY)
    assert HostedBackend(api_style="vllm", base_url="http://127.0.0.1:9").describe()["api_key_set"] is False
    with pytest.raises(errors.AuthenticationError, match="pass api_key"):
        HostedBackend(api_style="cohere", base_url="https://api.cohere.com").score(REQUEST)


def test_a_key_with_a_line_break_inside_is_refused_without_echoing_it():
    backend = HostedBackend(api_key="sk-abc\ndef")
    with pytest.raises(errors.AuthenticationError) as caught:
        backend.score(REQUEST)
    assert "sk-abc" not in str(caught.value)


def test_secret_objects_are_accepted_as_keys():
    class SecretStr:  # pydantic's interface
        def __init__(self, value):
            self._value = value

        def get_secret_value(self):
            return self._value

    with RerankServer(api_key=KEY) as server:
        backend = HostedBackend(api_key=SecretStr(KEY), base_url=server.base_url)
        assert backend.describe()["api_key_set"] is True
        assert len(backend.score(REQUEST)) == 1
        assert server.received[0].headers["authorization"] == f"Token {KEY}"


def test_the_key_appears_in_no_repr_description_or_log(caplog):
    caplog.set_level(logging.DEBUG)
    url = "https://memos.example.org/api/openmem/v1?token=x"
    rr = MemReranker(backend="hosted", api_key=KEY, base_url=url)
    shown = repr(rr) + repr(rr.backend) + json.dumps(rr.describe()) + caplog.text
    assert KEY not in shown
    assert "token=x" not in shown
    assert rr.describe()["api_key_set"] is True


@pytest.mark.parametrize(
    "url", ["https://user:pw-SECRET-99@memos.example.org/v1", "https://:pw-SECRET-99@memos.example.org/v1"]
)
def test_user_info_in_base_url_is_refused_without_echoing_it(url):
    with pytest.raises(errors.ConfigurationError, match="user info") as caught:
        HostedBackend(base_url=url)
    assert "pw-SECRET-99" not in str(caught.value)


def test_no_documents_means_no_call_and_no_key_needed():
    backend = HostedBackend()
    assert backend.score(ScoreRequest(query="q", documents=(), instruction="")) == []


def test_a_credential_in_the_base_url_query_is_never_shown_but_is_kept_in_settings():
    url = "https://svc.example/v1?access_token=qs-SECRET-1"
    options = HostedOptions.from_given({"base_url": url})
    for shown in (repr(options), str(options.describe()), repr(HostedBackend(base_url=url))):
        assert "qs-SECRET-1" not in shown and "access_token" not in shown
    assert options.describe()["base_url"] == "https://svc.example/v1?***"
    assert options.settings() == {"base_url": url}  # serialized as given, so a saved pipeline still reaches it
