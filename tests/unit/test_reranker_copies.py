"""``MemReranker`` copies share the backend (one loaded model, one session); pickles carry ``settings()`` only,
never the key, which the unpickled reranker reads from ``MEMOS_API_KEY`` again."""

from __future__ import annotations

import copy
import pickle

from memreranker_core import MemReranker
from tests.support.memories import SECRET


def test_copies_share_the_backend_and_keep_every_setting():
    rr = MemReranker(
        backend="hosted",
        base_url="https://host/v1?x=1",
        api_key=SECRET,
        read_timeout=3.0,
        context=["Caroline: I went to a support group."],
        document_template="[{date}] {text}",
        instruction="Find the memory",
    )
    for clone in (copy.copy(rr), copy.deepcopy(rr), copy.deepcopy([rr, rr])[0]):
        assert clone is not rr and clone.backend is rr.backend
        assert clone.settings() == rr.settings() and clone.describe() == rr.describe()
    pair = copy.deepcopy([rr, rr])
    assert pair[0] is pair[1]  # the memo is honoured: one object copied once


def test_pickles_carry_settings_only_and_read_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", "sk-from-the-environment")
    rr = MemReranker(backend="hosted", base_url="https://host/v1?x=1", api_key=SECRET, max_retries=1)
    data = pickle.dumps(rr)
    assert SECRET.encode() not in data
    loaded = pickle.loads(data)
    assert (
        loaded.settings() == rr.settings() == {"backend": "hosted", "base_url": "https://host/v1?x=1", "max_retries": 1}
    )
    assert loaded.backend is not rr.backend
    assert loaded.describe()["api_key_set"] is True  # the environment's key


def test_a_local_reranker_pickles_without_loading_its_model(tmp_path):
    rr = MemReranker(backend="local", model=str(tmp_path), device="cpu", max_length=256)  # nothing to load there
    loaded = pickle.loads(pickle.dumps(rr))
    assert loaded.settings() == {"backend": "local", "model": str(tmp_path), "device": "cpu", "max_length": 256}


def test_a_model_given_as_a_path_object_is_kept_in_settings_and_pickles(tmp_path):
    rr = MemReranker(backend="local", model=tmp_path, device="cpu")  # a pathlib.Path, not a string
    assert rr.settings() == {"backend": "local", "model": str(tmp_path), "device": "cpu"}
    assert pickle.loads(pickle.dumps(rr)).describe()["model"] == str(tmp_path)
