"""A mapping document without ``text`` is refused with a typed error, whatever its keys are."""

from __future__ import annotations

import pytest

from memreranker_core.documents import split_document
from memreranker_core.errors import InvalidInputError


@pytest.mark.parametrize(
    "document",
    [
        {1: "a", "date": "d"},
        {("tuple",): 1, 2.5: 2, None: 3, "content": "hi"},
        {10**5000: "huge int key", "x": 1},
        {"k" * 10_000: 1, 0: 2},
    ],
    ids=["int-and-str", "tuple-float-none-str", "huge-int", "long-key"],
)
def test_a_mapping_without_text_whose_keys_mix_types_raises_invalid_input(document):
    with pytest.raises(InvalidInputError, match=r"documents\[2\] is a mapping without a string 'text' key") as caught:
        split_document(document, 2)
    assert len(str(caught.value)) < 1000  # keys are named, each cut short


def test_the_keys_of_a_mapping_without_text_are_named_in_the_message():
    with pytest.raises(InvalidInputError) as caught:
        split_document({1: "a", "date": "d"}, 0)
    assert "1" in str(caught.value) and "'date'" in str(caught.value)
