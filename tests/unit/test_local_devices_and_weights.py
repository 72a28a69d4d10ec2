"""Careless local settings and broken checkpoints give typed errors that name the fix, never a traceback of torch's.

Nonsense ``device`` strings and ``attn_implementation`` values are refused when the reranker is built
(``LocalOptions``); a device this torch cannot use (``cuda`` on a CPU-only build, a GPU index past the last) when
the model loads; a truncated or garbled weights file is a ``ModelLoadError``.
"""

from __future__ import annotations

import shutil

import pytest

from memreranker_core import MemReranker
from memreranker_core.errors import ConfigurationError, ModelLoadError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:", ":0", "cuda:-1", "CUDA 0", "", "  ", "tpu", 0, 1.5, True])
def test_nonsense_device_strings_are_a_configuration_error_when_built(device):
    with pytest.raises(ConfigurationError, match="device must be a device string like 'cuda', 'cuda:1', 'cpu'"):
        MemReranker(model="unused", device=device)


@pytest.mark.parametrize("device", ["cpu", "CPU", " cuda ", "cuda:1", "mps", "xpu:0"])
def test_well_formed_device_strings_are_accepted_until_the_model_loads(device):
    assert MemReranker(model="unused", device=device).backend.options.device == device.strip().lower()


@pytest.mark.parametrize("value", [1, True, ["sdpa"], {"kind": "sdpa"}, "", "fastest"])
def test_attn_implementation_that_is_not_a_known_name_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError, match="attn_implementation must be a non-empty string, one of"):
        MemReranker(model="unused", attn_implementation=value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_on_a_torch_without_cuda_is_a_configuration_error_saying_so(tiny_model_path, device):
    reranker = MemReranker(model=str(tiny_model_path), device=device)
    with pytest.raises(ConfigurationError, match="CUDA is not available") as caught:
        reranker.warm_up()
    assert "device='cpu'" in str(caught.value) and torch.__version__ in str(caught.value)


def test_a_gpu_index_past_the_last_is_a_configuration_error(tiny_model_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA (without it the error says CUDA is not available, tested above)")
    reranker = MemReranker(model=str(tiny_model_path), device=f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(ConfigurationError, match="CUDA device"):
        reranker.warm_up()


def test_mps_where_it_is_not_available_is_a_configuration_error(tiny_model_path):
    if torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    with pytest.raises(ConfigurationError, match=r"MPS .* is not available"):
        MemReranker(model=str(tiny_model_path), device="mps").warm_up()


def test_the_cli_reports_cuda_on_a_cpu_only_torch_as_an_error_message_not_a_traceback(tiny_model_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    from memreranker_core.cli import main

    status = main(["rerank", "--model", str(tiny_model_path), "--device", "cuda", "-q", "query", "-d", "a memory"])
    captured = capsys.readouterr()
    assert status == 2
    assert "memreranker: error: ConfigurationError:" in captured.err and "CUDA is not available" in captured.err
    assert "Traceback" not in captured.err


def _copy(tiny_model_path, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_path, copy)
    return copy


def test_a_truncated_weights_file_is_a_model_load_error_with_the_fix(tiny_model_path, tmp_path):
    copy = _copy(tiny_model_path, tmp_path)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"damaged or incomplete\. Download it again"):
        MemReranker(model=str(copy), device="cpu").warm_up()


def test_a_garbled_weights_header_is_a_model_load_error(tiny_model_path, tmp_path):
    copy = _copy(tiny_model_path, tmp_path)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:64] = b"\xff" * 56  # the JSON header right after its length
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=str(copy)):
        MemReranker(model=str(copy), device="cpu").warm_up()


def test_a_missing_model_is_a_model_load_error_that_never_shows_the_hub_token(tmp_path):
    secret = "hf_TopSecretToken1234567890"
    reranker = MemReranker(model=str(tmp_path / "absent"), device="cpu", token=secret, local_files_only=True)
    with pytest.raises(ModelLoadError) as caught:
        reranker.warm_up()
    assert secret not in str(caught.value) and secret not in repr(reranker)


def test_a_hub_id_not_in_the_cache_warns_once_of_the_download_before_loading(tmp_path, monkeypatch, caplog):
    from memreranker_core.backends.local.loading import warn_if_downloading
    from memreranker_core.backends.local.options import LocalOptions

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    empty_cache = LocalOptions.from_given({"cache_dir": str(tmp_path)})
    with caplog.at_level("WARNING", logger="memreranker_core.backends.local.loading"):
        assert warn_if_downloading("IAAR-Shanghai/MemReranker-4B", empty_cache)
    assert "about 8 GB" in caplog.text and "MEMRERANKER_MODEL" in caplog.text
    caplog.clear()
    assert not warn_if_downloading(str(tmp_path), empty_cache)  # a local folder downloads nothing
    assert not warn_if_downloading("IAAR-Shanghai/MemReranker-4B", LocalOptions.from_given({"local_files_only": True}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not warn_if_downloading("IAAR-Shanghai/MemReranker-4B", empty_cache)
    assert caplog.text == ""
