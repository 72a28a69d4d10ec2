"""Every form of a secret the client can derive from what it sent is removed from the service's words: re-cased,
percent-encoded, HTML entities, backslash escapes, base64 of the auth header, and a header's credential alone."""

from __future__ import annotations

import base64
import html
import json
import urllib.parse

import pytest

from memreranker_core.backends.hosted import failures
from memreranker_core.backends.hosted.redaction import (
    MIN_REDACTABLE,
    SHORT_SECRET_NOTE,
    quote,
    redact,
    service_words,
)

KEY = "sk+Test/SECRET=4242&x"  # a key with the characters URLs and HTML escape
HEADER = "Bearer tok-ABCdef-0123456789"  # an extra header's value with a scheme word
BASIC = "Basic " + base64.b64encode(b"alice:pa55word-XYZ").decode()
SECRETS = (KEY, HEADER, BASIC)


def leaked(text: str, secret: str, size: int = 6) -> list[str]:
    """Every ``size``-character piece of ``secret`` (in any case) left in ``text``."""
    flat = "".join(text.split()).lower()
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size].lower() in flat]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ECHOES = {
    "lower-cased": KEY.lower(),
    "upper-cased": KEY.upper(),
    "quote": urllib.parse.quote(KEY, safe=""),
    "quote-default-safe": urllib.parse.quote(KEY),
    "quote_plus": urllib.parse.quote_plus(KEY),
    "quote-lower-hex": urllib.parse.quote(KEY, safe="").lower(),
    "html-escape": html.escape(KEY),
    "html-named": KEY.replace("+", "&plus;").replace("/", "&sol;").replace("=", "&equals;").replace("&x", "&amp;x"),
    "html-decimal": "".join(f"&#{ord(c)};" for c in KEY),
    "html-hex": "".join(f"&#x{ord(c):X};" for c in KEY),
    "html-mixed": "sk&#43;Test&#x2f;SECRET&equals;4242&amp;x",
    "json-u-escapes": "".join(f"\\u{ord(c):04x}" for c in KEY),
    "json-escaped-slash": json.dumps(KEY)[1:-1].replace("/", "\\/"),
    "python-x-escapes": "".join(f"\\x{ord(c):02x}" for c in KEY),
    "base64-key": b64(KEY),
    "base64-token-header": b64(f"Token {KEY}"),
    "base64-bearer-header": b64(f"Bearer {KEY}"),
    "base64-whole-header-line": b64(f"Authorization: Bearer {KEY}"),
    "base64-urlsafe": base64.urlsafe_b64encode(f"Basic {KEY}".encode()).decode(),
}


@pytest.mark.parametrize("echo", list(ECHOES.values()), ids=list(ECHOES))
def test_a_key_echoed_in_another_form_is_redacted(echo):
    words = service_words(f"the key {echo} is invalid", SECRETS)
    assert words.startswith("the key ") and words.endswith(" is invalid") and "***" in words
    assert echo not in words and leaked(words, KEY) == []


@pytest.mark.parametrize(
    "echo",
    [
        "tok-ABCdef-0123456789",  # only the token after "Bearer"
        "TOK-abcdef-0123456789",
        urllib.parse.quote("tok-ABCdef-0123456789", safe="-"),
        b64(HEADER),
        "pa55word-XYZ",  # the password inside a Basic credential
        "alice:pa55word-XYZ",
        BASIC.split()[1],
    ],
    ids=["token", "token-recased", "token-quoted", "header-base64", "basic-password", "basic-decoded", "basic-base64"],
)
def test_a_header_value_echoed_in_part_is_redacted(echo):
    words = service_words(f"refused credential [{echo}]", SECRETS)
    assert "***" in words and echo not in words
    assert leaked(words, "tok-ABCdef-0123456789") == [] and leaked(words, "pa55word-XYZ") == []


def test_the_key_split_by_escapes_tags_and_whitespace_at_once_is_redacted():
    echo = "sk%2B<b>Test</b>&#x2F;SEC\n  RET&equals;42 42&amp;x"
    assert leaked(service_words(f"bad {echo}!", SECRETS), KEY) == []


def test_a_key_after_megabytes_of_whitespace_and_tags_is_redacted():
    body = " \n" * 3_000_000 + "<p></p>" * 100_000 + urllib.parse.quote(KEY, safe="") + " end"
    assert service_words(body, SECRETS) == "*** end"


def test_a_key_straddling_the_cut_of_a_long_body_is_redacted():
    for filler in range(280, 300):
        words = service_words("x" * filler + html.escape(KEY) + "y" * 10_000, SECRETS)
        assert leaked(words, KEY) == [] and words.endswith("...")


def test_a_secret_holding_a_tag_or_runs_of_spaces_is_redacted_after_tags_are_dropped():
    secret = "ab<cd>  efghijkl"
    assert leaked(service_words(f"echo {secret} end", [secret]), "efghijkl") == []


def test_a_short_credential_after_a_scheme_word_drops_the_services_words():
    assert len("t0k") < MIN_REDACTABLE
    assert quote("the token t0k is wrong", ["Bearer t0k"]) == SHORT_SECRET_NOTE


def test_redaction_leaves_other_words_as_they_are():
    text = "Bearer tokens are refused; use %2B or &plus; in SECRETS only when asked"
    assert redact(text, SECRETS) == text
    assert service_words(text, SECRETS) == text


def test_the_redaction_names_stay_importable_from_failures():
    assert failures.redact is redact and failures.service_words is service_words and failures.quote is quote
    assert failures.SHORT_SECRET_NOTE == SHORT_SECRET_NOTE and failures.MIN_REDACTABLE == MIN_REDACTABLE
    failure = failures.classify(status=401, code=None, detail=quote(f"bad {KEY.lower()}", SECRETS))
    assert leaked(str(failure.to_error("https://svc/rerank", 1, SECRETS)), KEY) == []
