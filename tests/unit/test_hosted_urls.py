"""``base_url`` is parsed once, as the HTTP client reads it: the plain-http guard, the endpoint, ``describe()`` and
errors all name the host the request really goes to; a query is kept after the dialect's path; user info and
fragments are refused."""

from __future__ import annotations

import httpx
import pytest

from memreranker_core import errors
from memreranker_core.backends.hosted.backend import HostedBackend
from memreranker_core.backends.hosted.dialects import DIALECTS
from memreranker_core.types import ScoreRequest

REQUEST = ScoreRequest(query="q", documents=("d",), instruction="")


def connects_to(url: str) -> str:
    """The host httpx sends a POST to ``url`` to."""
    return httpx.Request("POST", url).url.host


def parse_url(url: str) -> httpx.URL:
    return httpx.URL(url)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("MEMOS_API_KEY", raising=False)
    monkeypatch.delenv("MEMOS_BASE_URL", raising=False)


@pytest.mark.parametrize(
    "url", ["http://evil.example\\@127.0.0.1:8000", "http://evil.example\\@localhost/v1", "http://evil\\@[::1]:80"]
)
def test_a_backslash_before_an_at_sign_is_user_info_and_refused(url):
    assert httpx.URL(url).userinfo  # httpx reads what stands before the @ as user info
    with pytest.raises(errors.ConfigurationError, match="user info"):
        HostedBackend(base_url=url, api_style="vllm")


def test_describe_repr_and_errors_name_the_host_httpx_connects_to():
    backend = HostedBackend(base_url="https://Evil.Example/api/openmem/v1")
    assert connects_to(backend.url) == parse_url(backend.describe()["base_url"]).host
    assert f"base_url='https://{connects_to(backend.url)}/" in repr(backend)
    with pytest.raises(errors.AuthenticationError) as caught:  # no key: the message names where it would go
        backend.score(REQUEST)
    assert f"at https://{connects_to(backend.url)}/" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://LOCALHOST:8000/v1/",
        "http://[::1]:8000",
        "http://api.localhost:9000",
        "http://127.8.9.10",
        "https://host.example:8443/a/b",
        "https://evil.example\\@127.0.0.1",
        "https://127.0.0.1\\@evil.example",
        "https://evil.example%5C@127.0.0.1",
    ],
)
def test_the_endpoint_and_the_shown_url_have_the_host_httpx_connects_to(url):
    try:
        backend = HostedBackend(base_url=url, api_style="vllm")
    except errors.ConfigurationError:
        return  # refused outright is fine too
    assert connects_to(backend.url) == parse_url(backend.describe()["base_url"]).host
    if backend.url.startswith("http://"):  # allowed in clear only because httpx really goes to loopback
        assert connects_to(backend.url) in ("127.0.0.1", "localhost", "::1", "api.localhost", "127.8.9.10")


@pytest.mark.parametrize("style", sorted(DIALECTS))
def test_a_query_in_base_url_stays_after_the_dialect_path(style):
    backend = HostedBackend(base_url="https://svc.example/v1?tenant=a&region=eu", api_style=style, api_key="k" * 9)
    path = DIALECTS[style].endpoint_path("/v1")
    assert backend.url == f"https://svc.example{path}?tenant=a&region=eu"
    assert "tenant" not in backend.describe()["base_url"] and "tenant" not in repr(backend)  # may carry a token


def test_a_fragment_in_base_url_is_refused():
    with pytest.raises(errors.ConfigurationError, match="fragment"):
        HostedBackend(base_url="https://svc.example/v1#section")


def test_user_info_in_base_url_is_refused_without_echoing_the_password():
    with pytest.raises(errors.ConfigurationError, match="user info") as caught:
        HostedBackend(base_url="https://me:pw-SECRET-77@svc.example/v1")
    assert "pw-SECRET-77" not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://svc.example", "https://", "svc.example/v1", "https://svc.example:99999"])
def test_urls_the_client_cannot_use_are_refused(url):
    with pytest.raises(errors.ConfigurationError):
        HostedBackend(base_url=url)
