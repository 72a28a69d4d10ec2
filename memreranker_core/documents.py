"""Turning documents (strings or text + metadata mappings) into the text the model scores.

The same rules serve the core, the evaluation and every framework adapter, so metadata such as a memory's date and
speaker reaches the scored text the same way everywhere.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.types import DocumentInput

#: A lone UTF-16 surrogate: not a character, so no tokenizer or JSON encoder can take it.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: How a template refusal describes what is allowed.
_TEMPLATE_RULE = (
    "use plain named fields only, like '[{date}] {speaker}: {text}' (no format specs ':...', no conversions '!r', "
    "no attribute or index lookups '.x' / '[0]'; write a literal brace as '{{' or '}}')"
)


def check_text(text: str, where: str) -> str:
    """Return ``text`` unless it holds a lone surrogate (``"\\ud800"``), which no backend can encode.

    Such strings come from decoding bytes with ``errors="surrogateescape"`` (``os.fsdecode``, ``sys.argv`` on
    POSIX) or from broken UTF-16. They are refused, not silently replaced, so a memory is never scored as
    different text than the caller holds.

    Raises:
        InvalidInputError: ``text`` holds a surrogate; the message names ``where`` and the position.
    """
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found is not None:
            raise InvalidInputError(
                f"{where} holds the lone surrogate {found.group()!r} at position {found.start()}, which is not "
                "valid Unicode text; decode the source bytes with errors='replace' (or fix its encoding) first"
            )
    return text


@lru_cache(maxsize=256)
def _parse_template(template: str) -> tuple[tuple[str, str | None], ...]:
    """``(literal, field name or None)`` pieces of a template, checked once per distinct template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(
            f"document_template {template!r} is not a valid format string: {exc}; {_TEMPLATE_RULE}"
        ) from exc
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion is not None):
            field = (
                "{" + name + (f"!{conversion}" if conversion is not None else "") + (f":{spec}" if spec else "") + "}"
            )
            raise ConfigurationError(f"document_template {template!r} has the field {field}: {_TEMPLATE_RULE}")
        pieces.append((literal, name))
    if not any(name == "text" for _, name in pieces):
        raise ConfigurationError(f"document_template {template!r} must contain {{text}}, the document's text")
    return tuple(pieces)


def template_fields(template: str) -> tuple[str, ...]:
    """Return the field names a ``document_template`` uses, checking its syntax.

    Only plain named fields are accepted (``{date}``, ``{text}``): a format spec (``{text:>9}``, and fields nested
    in one, ``{text:{date.__class__}}``), a conversion (``{text!r}``) or a lookup (``{date.year}``, ``{x[0]}``)
    would run code on user data or build unbounded strings, so each is refused.

    Raises:
        ConfigurationError: The template is not a valid ``str.format`` template of plain named fields, or lacks
            ``{text}``.
    """
    return tuple(dict.fromkeys(name for _, name in _parse_template(template) if name is not None))


def render_document(
    text: str,
    metadata: Mapping[str, Any] | None = None,
    *,
    template: str | None = None,
    metadata_fields: Sequence[str] = (),
    separator: str = "\n",
) -> str:
    """Return the text to score for one document.

    ``metadata_fields`` prepends the values of those metadata keys, joined by ``separator``, before the text (keys
    a document lacks are skipped), the way Haystack's ``meta_fields_to_embed`` does. ``template`` then fills
    ``{text}`` and any metadata field, e.g. ``"[{date}] {speaker}: {text}"``, with ``str()`` of each value.

    Args:
        text: The document's own text.
        metadata: Its metadata.
        template: Optional template of plain named fields, including ``{text}``.
        metadata_fields: Metadata keys whose values are prepended to the text.
        separator: What joins the prepended values and the text.

    Raises:
        ConfigurationError: The template is not one of plain named fields (see ``template_fields``).
        InvalidInputError: The template names a field the document's metadata lacks, or a metadata value holds a
            lone surrogate.

    Example:
        >>> render_document("Went to a support group.", {"date": "7 May 2023"}, template="[{date}] {text}")
        '[7 May 2023] Went to a support group.'
    """
    metadata = metadata or {}
    if metadata_fields:
        values = [str(metadata[key]) for key in metadata_fields if metadata.get(key) not in (None, "")]
        if values:
            text = check_text(separator.join([*values, text]), "a document's text with its metadata_fields")
    if template is None:
        return text
    pieces = _parse_template(template)
    missing = [name for _, name in pieces if name is not None and name != "text" and name not in metadata]
    if missing:
        raise InvalidInputError(
            f"document_template {template!r} needs the field(s) {list(dict.fromkeys(missing))}, which this "
            f"document's metadata lacks (it has {sorted(map(str, metadata))}); add them or change the template"
        )
    parts = [
        literal + ("" if name is None else text if name == "text" else str(metadata[name])) for literal, name in pieces
    ]
    return check_text("".join(parts), "a document rendered with document_template")


#: Most keys of a mapping named in a message, and the longest rendering of one.
_KEYS_SHOWN, _KEY_LIMIT = 10, 40


def _shown_keys(mapping: Mapping[Any, Any]) -> str:
    """The mapping's keys for a message: each ``repr`` (cut to ``_KEY_LIMIT``), sorted as text, so keys of mixed
    types (``1`` and ``"date"``) can be named together; at most ``_KEYS_SHOWN`` of them."""
    shown = sorted(_short_repr(key) for key in itertools.islice(mapping, _KEYS_SHOWN + 1))
    more = ", ..." if len(shown) > _KEYS_SHOWN else ""
    return f"[{', '.join(shown[:_KEYS_SHOWN])}{more}]"


def _short_repr(value: Any) -> str:
    try:
        shown = repr(value)
    except Exception:  # a key whose repr fails is still named, by its type
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= _KEY_LIMIT else shown[: _KEY_LIMIT - 3] + "..."


def split_document(document: DocumentInput, position: int) -> tuple[str, Mapping[str, Any]]:
    """Return ``(text, metadata)`` of a document given as a string or a mapping with a ``"text"`` key.

    Raises:
        InvalidInputError: The document is ``None``, not a string or mapping, or a mapping without string text.
    """
    if isinstance(document, str):
        return check_text(document, f"documents[{position}]"), {}
    if isinstance(document, Mapping):
        text = document.get("text")
        if isinstance(text, str):
            check_text(text, f"documents[{position}]")
            return text, {key: value for key, value in document.items() if key != "text"}
        raise InvalidInputError(
            f"documents[{position}] is a mapping without a string 'text' key (keys: {_shown_keys(document)}); "
            "give each document as a string or as {'text': ..., **metadata}"
        )
    raise InvalidInputError(
        f"documents[{position}] is {type(document).__name__}, not a string: every document must be text "
        "(or a mapping with a 'text' key). Replace None with '' if an empty memory should be scored."
    )
