"""Against the real loopback server: a service that echoes the key or an extra header's credential in another form
(percent-encoded, re-cased, HTML entities, ``\\u`` escapes, base64 of the auth header, the token after ``Bearer``)
never gets it into the raised error or the logs."""

from __future__ import annotations

import base64
import logging
import urllib.parse

import pytest

from memreranker_core import MemReranker, errors
from tests.support.memories import HOSTED_DOCS, HOSTED_QUERY
from tests.support.rerank_server import Fault, RerankServer

KEY = "sk+Live/Key=0099AbC"
TOKEN = "Zq9-Tok3n-0123456789"


def pieces(text: str, secret: str, size: int = 6) -> list[str]:
    flat = "".join(text.split()).lower()
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size].lower() in flat]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.body_code(40132, message=f"key {urllib.parse.quote(KEY, safe='')} is invalid"),
        Fault.body_code(40132, message=f"key {KEY.lower()} is invalid"),
        Fault.html(502, page=f"<p>key {KEY.replace('+', '&#43;').replace('/', '&sol;')}</p>"),
        Fault.html(502, page="key " + "".join(f"\\u{ord(c):04x}" for c in KEY)),
        Fault.html(502, page="auth " + base64.b64encode(f"Token {KEY}".encode()).decode()),
        Fault.html(502, page=f"upstream refused tenant token {TOKEN}"),
        Fault.html(502, page="hdr " + base64.b64encode(f"X-Tenant: Bearer {TOKEN}".encode()).decode()),
    ],
    ids=["percent-encoded", "lower-cased", "html-entities", "u-escapes", "base64-auth", "token-only", "base64-hdr"],
)
def test_a_secret_echoed_in_another_form_never_reaches_the_error_or_the_log(fault, caplog):
    caplog.set_level(logging.DEBUG)
    with RerankServer(api_key=KEY) as server:
        server.inject(fault, fault)
        rr = MemReranker(
            backend="hosted",
            base_url=server.base_url,
            api_key=KEY,
            headers={"X-Tenant": f"Bearer {TOKEN}"},
            max_retries=1,
            backoff_factor=0.001,
        )
        with pytest.raises(errors.HostedBackendError) as caught:
            rr.score(HOSTED_QUERY, HOSTED_DOCS)
    said = str(caught.value)
    assert "***" in said
    for secret in (KEY, TOKEN):
        assert pieces(said, secret) == [] and pieces(caplog.text, secret) == []
