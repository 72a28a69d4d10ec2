"""A bad embedding cache entry (garbage, truncated, pickled objects, wrong shape or width, NaN, not unit length)
is logged and computed again, never a traceback or silently used; two different text lists never share a key."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from memreranker_core.eval.embeddings import CachedEmbedder, cache_key
from tests.integration.test_eval_dense import EMBEDDER_DIR

TEXTS = ["Caroline went to the support group.", "Melanie went camping.", "They talked about adoption."]


@pytest.fixture(scope="module")
def embedder_path():
    if not (EMBEDDER_DIR / "model.safetensors").is_file():
        from memreranker_core.testing.random_embedder import build_random_embedder

        build_random_embedder(EMBEDDER_DIR, seed=0)
    return EMBEDDER_DIR.resolve()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write_garbage(path):
    path.write_bytes(b"\x93NUMPY garbage \x00\xff" * 7)


def write_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def write_objects(path):
    np.save(path, np.array([{"a": 1}, None, "x"], dtype=object), allow_pickle=True)


def write_wrong_rows(path):
    np.save(path, np.eye(2, 32, dtype=np.float32))


def write_wrong_width(path):
    np.save(path, np.eye(3, 16, dtype=np.float32))


def write_nan(path):
    vectors = np.load(path)
    vectors[1, :] = np.nan
    np.save(path, vectors)


def write_not_unit(path):
    np.save(path, np.load(path) * 3.0)


def write_float64(path):
    np.save(path, np.load(path).astype(np.float64))


def write_one_dimensional(path):
    np.save(path, np.ones(3, dtype=np.float32))


DAMAGE = [
    write_garbage,
    write_truncated,
    write_objects,
    write_wrong_rows,
    write_wrong_width,
    write_nan,
    write_not_unit,
    write_float64,
    write_one_dimensional,
]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__.removeprefix("write_") for d in DAMAGE])
def test_a_bad_cache_entry_is_logged_and_recomputed(embedder_path, tmp_path, damage, caplog):
    model = tmp_path / "model"
    shutil.copytree(embedder_path, model)
    first = CachedEmbedder(str(model), cache_dir=str(tmp_path / "cache"), device="cpu").embed(TEXTS)
    [entry] = (tmp_path / "cache").rglob("*.npy")
    damage(entry)
    caplog.set_level(logging.WARNING)
    again = CachedEmbedder(str(model), cache_dir=str(tmp_path / "cache"), device="cpu").embed(TEXTS)
    assert again.dtype == np.float32 and again.shape == first.shape
    np.testing.assert_allclose(again, first, atol=1e-6)
    assert "ignoring the embedding cache file" in caplog.text and entry.name in caplog.text
    np.testing.assert_allclose(np.load(entry), first, atol=1e-6)  # the entry is whole again


def test_a_good_cache_entry_is_used_without_the_model(embedder_path, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(embedder_path, model)
    first = CachedEmbedder(str(model), cache_dir=str(tmp_path / "cache"), device="cpu").embed(TEXTS)
    shutil.rmtree(model)  # only the cache can answer now
    caplog.set_level(logging.WARNING)
    np.testing.assert_array_equal(CachedEmbedder(str(model), cache_dir=str(tmp_path / "cache")).embed(TEXTS), first)
    assert "ignoring" not in caplog.text


@pytest.mark.parametrize(
    "one, other",
    [
        (["a\0b", "c"], ["a", "b\0c"]),
        (["a\0", "b"], ["a", "\0b"]),
        (["", "ab"], ["a", "b"]),
        (["x" * 3], ["x", "x", "x"]),
    ],
)
def test_different_text_lists_never_share_a_cache_key(one, other):
    assert cache_key("model", one) != cache_key("model", other)
    assert cache_key("model\0a", ["b"]) != cache_key("model", ["a\0b"])
