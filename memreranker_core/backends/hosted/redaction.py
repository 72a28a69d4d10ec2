"""Removing secrets (the API key, extra header values) from the service's words before any message quotes them.

A service may echo a secret back in any form the client's request can yield, so ``redact`` removes every form the
client can derive from the secrets it sent:

- the secret itself, in any letter case (``SK-ABC`` and ``sk-abc`` for ``sk-Abc``);
- with each character given as itself or escaped: percent-encoded (``quote`` and ``quote_plus``, any hex case),
  as an HTML entity (named ``&plus;``, decimal ``&#43;`` or hex ``&#x2B;``), as a ``\\uXXXX`` / ``\\xXX`` /
  ``\\UXXXXXXXX`` escape or a backslash-escaped character (``\\/`` in JSON), mixed freely within one echo;
- with whitespace or HTML tags put between its characters (a line-wrapped or highlighted echo);
- a header value's credential without its scheme word (``tok-123...`` of ``Bearer tok-123...``; the schemes of
  ``AUTH_SCHEMES``) and, for ``Basic``, the decoded ``user:password`` and the password alone;
- base64 (standard and URL-safe) of each of those, at any byte offset inside a longer encoded text (``Bearer
  <key>`` or a whole ``Authorization: Token <key>`` line encoded): the characters that encode only the secret's
  own bytes.

The service's words are redacted whole, then tags are dropped and only then is the text cut to its length limit.
A secret (or a credential derived from one) shorter than ``MIN_REDACTABLE`` characters cannot be removed without
mangling ordinary words (a key ``"ab"`` would blank every ``ab``), so while one is in use the service's words are
left out of messages entirely and the message says so. The patterns of one set of secrets are built once and
cached: redacting costs one regular-expression scan of the text.

Example:
    >>> service_words("bad key sk-<b>SECRET</b>-123!", ("sk-SECRET-123",), limit=40)
    'bad key ***!'
    >>> redact("echo: sk%2DSECRET%2D123 and SK-SECRET-123", "sk-SECRET-123")
    'echo: *** and ***'
"""

from __future__ import annotations

import base64
import binascii
import html.entities
import re
from collections.abc import Sequence
from functools import lru_cache

#: Secrets shorter than this are never searched for in text (see the module's note): the service's words are dropped.
MIN_REDACTABLE = 8
#: Longest quote of the service's words in a message.
SAID_LIMIT = 300
SHORT_SECRET_NOTE = "the service's own words are left out: the API key is too short to redact them safely"
_TAG = re.compile(r"<[^>]*>")
_GAP = r"(?:\s|<[^>]*>)*"  # what may sit between a secret's characters in a body: whitespace and tags
#: ``Scheme credential`` in a header value (``Bearer abc``, ``Basic dXNlcjpwYXNz``), for these schemes.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s+(\S+)")
AUTH_SCHEMES = frozenset({"bearer", "token", "basic", "apikey", "api-key", "key", "jwt", "digest"})

Secrets = Sequence[str | None] | str | None


def _each(secrets: Secrets) -> tuple[str, ...]:
    if secrets is None or isinstance(secrets, str):
        secrets = (secrets,)
    return tuple(secret for secret in secrets if secret)


def redact(text: str, secrets: Secrets, *, collapsed: bool = False) -> str:
    """``text`` with every form of each secret (see the module docstring) replaced by ``***``; forms shorter than
    ``MIN_REDACTABLE`` are left alone. ``collapsed``: ``text`` had its tags dropped and whitespace collapsed, so
    the secrets are also looked for collapsed alike."""
    pattern = _pattern(_each(secrets), collapsed)
    return text if pattern is None else pattern.sub("***", text)


def service_words(text: str, secrets: Secrets, limit: int = SAID_LIMIT) -> str:
    """The service's own ``text`` made safe to quote: tags dropped and whitespace collapsed, every secret removed
    from what can be shown, and cut to ``limit`` characters. ``""`` when a secret is too short to redact.

    A secret the service split with tags or whitespace is found in the collapsed text (single spaces may sit
    between its characters), and a secret holding ``<...>`` or runs of whitespace is also looked for collapsed
    alike. Only the head that can be shown, ``limit`` characters and the longest spelling of a secret beyond
    them, is searched, so a body of megabytes costs one pass of the collapsing.
    """
    if too_short(secrets):
        return ""
    shown = _collapse(text)
    longest = max((len(form) for form in _forms(secrets)), default=0)
    head = shown[: limit + _MAX_SPELLING * longest]
    words = _collapse(redact(head, secrets, collapsed=True))
    return words[:limit] + ("..." if len(words) > limit or len(head) < len(shown) else "")


def quote(text: str, secrets: Secrets, limit: int = SAID_LIMIT) -> str:
    """What a message may quote of the service's ``text``: its safe words, ``SHORT_SECRET_NOTE`` when they had to
    be left out, or ``""`` when it said nothing."""
    if not text or not text.strip():
        return ""
    return service_words(text, secrets, limit) or SHORT_SECRET_NOTE


def too_short(secrets: Secrets) -> bool:
    """Whether a secret, or a credential derived from one, is too short to redact safely."""
    return any(len(form) < MIN_REDACTABLE for secret in _each(secrets) for form in _credentials(secret))


def secret_forms(secret: str) -> tuple[str, ...]:
    """The texts whose every spelling ``redact`` removes for ``secret``: the secret, the credentials derived from
    it and their base64 fragments; longest first, those shorter than ``MIN_REDACTABLE`` left out.

    Example:
        >>> forms = secret_forms("Bearer tok-0123456789")
        >>> "tok-0123456789" in forms, "dG9rLTAxMjM0NTY3OD" in forms  # the token alone, and its base64
        (True, True)
    """
    texts = [form for form in _credentials(secret) if len(form) >= MIN_REDACTABLE]
    encoded = [piece for form in texts for piece in _base64_pieces(form)]
    return tuple(sorted(dict.fromkeys(texts + encoded), key=len, reverse=True))


# ----------------------------------------------------------------- the shown head of a long text
#: Most characters one character of a secret can take once spelled (``&CounterClockwiseContourIntegral;``), plus
#: the one space a gap between two of them can leave.
_MAX_SPELLING = 36


def _collapse(text: str) -> str:
    """``text`` as a message shows it: every tag a space, whitespace runs one space, no space at either end."""
    return " ".join(_TAG.sub(" ", text).split())


def _forms(secrets: Secrets) -> tuple[str, ...]:
    return tuple(form for secret in _each(secrets) for form in secret_forms(secret))


# ----------------------------------------------------------------- forms
def _credentials(secret: str) -> list[str]:
    """The secret, its credential after a scheme word, and a ``Basic`` credential decoded (and its password)."""
    forms = [secret]
    match = _SCHEME.fullmatch(secret.strip())
    if match is None or match.group(1).lower() not in AUTH_SCHEMES:
        return forms
    scheme, credential = match.group(1), match.group(2)
    forms.append(credential)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return forms
        forms.append(decoded)
        if ":" in decoded and decoded.partition(":")[2]:
            forms.append(decoded.partition(":")[2])
    return forms


def _base64_pieces(text: str) -> list[str]:
    """The base64 characters that encode only ``text``'s bytes, wherever it starts in a longer encoded text
    (3 byte offsets), in standard and URL-safe alphabets."""
    data = text.encode("utf-8")
    pieces = []
    for offset, skip in ((0, 0), (1, 2), (2, 3)):  # offset bytes before: the first ``skip`` characters mix them in
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        piece = encoded[skip : (offset + len(data)) * 8 // 6]  # the last partial character mixes in what follows
        if len(piece) >= MIN_REDACTABLE:
            pieces += [piece, piece.replace("+", "-").replace("/", "_")]
    return pieces


@lru_cache(maxsize=4096)
def _spellings(char: str) -> str:
    """A regular expression for one character of a secret, however a service may have escaped it."""
    options = {re.escape(char)}
    for variant in {char, char.lower(), char.upper()}:
        if len(variant) != 1:
            continue
        code = ord(variant)
        options.add(re.escape(variant))
        options.add("".join(f"%{byte:02x}" for byte in variant.encode("utf-8")))
        options.add(f"&#0{{0,8}}{code};?")
        options.add(f"&#x0{{0,8}}{code:x};?")
        options.update(re.escape(f"&{name}") for name in _entity_names().get(variant, ()))
        if code < 0x10000:
            options.add(rf"\\u{code:04x}")
        else:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            options.add(rf"\\u{high:04x}\\u{low:04x}")
        if code < 0x100:
            options.add(rf"\\x{code:02x}")
        options.add(rf"\\U{code:08x}")
        if not variant.isalnum():
            options.add(r"\\" + re.escape(variant))  # a backslash-escaped character: \/ \" \\
    if char == " ":
        options.add(r"\+")  # quote_plus
    return "(?:" + "|".join(sorted(options, key=len, reverse=True)) + ")"


@lru_cache(maxsize=1)
def _entity_names() -> dict[str, tuple[str, ...]]:
    """HTML5 entity names (with and without their ``;``) per character."""
    names: dict[str, list[str]] = {}
    for name, value in html.entities.html5.items():
        if len(value) == 1:
            names.setdefault(value, []).append(name)
    return {char: tuple(found) for char, found in names.items()}


@lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...], collapsed: bool = False) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching every spelling of every form of ``secrets`` (and, when
    ``collapsed``, of each form collapsed as ``_collapse`` does); ``None`` if none."""
    found = {form for secret in secrets for form in secret_forms(secret)}
    if collapsed:
        found |= {shown for form in found if len(shown := _collapse(form)) >= MIN_REDACTABLE}
    forms = sorted(found, key=len, reverse=True)
    if not forms:
        return None
    return re.compile("|".join(_GAP.join(_spellings(char) for char in form) for form in forms), re.IGNORECASE)


__all__ = [
    "AUTH_SCHEMES",
    "MIN_REDACTABLE",
    "SAID_LIMIT",
    "SHORT_SECRET_NOTE",
    "Secrets",
    "quote",
    "redact",
    "secret_forms",
    "service_words",
    "too_short",
]
