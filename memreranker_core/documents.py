"""Turning documents (strings or text + metadata mappings) into the text the model scores.

The same rules serve the core, the evaluation and every framework adapter, so metadata such as a memory's date and
speaker reaches the scored text the same way everywhere.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from memreranker_core.errors import ConfigurationError, InvalidInputError
from memreranker_core.types import DocumentInput


def template_fields(template: str) -> tuple[str, ...]:
    """Return the field names a ``document_template`` uses, checking its syntax.

    Raises:
        ConfigurationError: The template is not a valid ``str.format`` template with named fields, or lacks
            ``{text}``.
    """
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigurationError(f"document_template {template!r} is not a valid format string: {exc}") from exc
    if any(not name or not name.isidentifier() for name in names):
        raise ConfigurationError(
            f"document_template {template!r} must use named fields only, like '[{{date}}] {{speaker}}: {{text}}'"
        )
    if "text" not in names:
        raise ConfigurationError(f"document_template {template!r} must contain {{text}}, the document's text")
    return tuple(dict.fromkeys(names))


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
    a document lacks are skipped), the way Haystack's ``meta_fields_to_embed`` does. ``template`` then formats
    ``{text}`` and any metadata field, e.g. ``"[{date}] {speaker}: {text}"``.

    Args:
        text: The document's own text.
        metadata: Its metadata.
        template: Optional ``str.format`` template with ``{text}`` and metadata field names.
        metadata_fields: Metadata keys whose values are prepended to the text.
        separator: What joins the prepended values and the text.

    Raises:
        InvalidInputError: The template names a field the document's metadata lacks.
    """
    metadata = metadata or {}
    if metadata_fields:
        values = [str(metadata[key]) for key in metadata_fields if metadata.get(key) not in (None, "")]
        text = separator.join([*values, text])
    if template is None:
        return text
    fields = dict(metadata)
    fields["text"] = text
    missing = [name for name in template_fields(template) if name not in fields]
    if missing:
        raise InvalidInputError(
            f"document_template {template!r} needs the field(s) {missing}, which this document's metadata lacks "
            f"(it has {sorted(metadata)}); add them or change the template"
        )
    return template.format_map(fields)


def split_document(document: DocumentInput, position: int) -> tuple[str, Mapping[str, Any]]:
    """Return ``(text, metadata)`` of a document given as a string or a mapping with a ``"text"`` key.

    Raises:
        InvalidInputError: The document is ``None``, not a string or mapping, or a mapping without string text.
    """
    if isinstance(document, str):
        return document, {}
    if isinstance(document, Mapping):
        text = document.get("text")
        if isinstance(text, str):
            return text, {key: value for key, value in document.items() if key != "text"}
        raise InvalidInputError(
            f"documents[{position}] is a mapping without a string 'text' key (keys: {sorted(document)}); "
            "give each document as a string or as {'text': ..., **metadata}"
        )
    raise InvalidInputError(
        f"documents[{position}] is {type(document).__name__}, not a string: every document must be text "
        "(or a mapping with a 'text' key). Replace None with '' if an empty memory should be scored."
    )
