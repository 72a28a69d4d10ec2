"""``LocalOptions``: every setting of the local backend, declared once (see ``memreranker_core.backends.options``).

Adding an option is one field here plus its use; validation, ``describe()``, ``settings()`` (serialization), the
command line's flags and the adapters' ``reranker_options`` follow from the field.

Example:
    >>> options = LocalOptions.from_given({"device": "cpu", "max_length": 4096})
    >>> options.settings()
    {'device': 'cpu', 'max_length': 4096}
    >>> options.describe()["dtype"] is None  # resolved when the model loads: bfloat16 on CUDA, float32 on CPU
    True
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from typing import Any

from memreranker_core.backends.options import (
    BackendOptions,
    check_bool,
    check_secret,
    option,
    secret_text,
    text,
    whole,
)
from memreranker_core.errors import ConfigurationError

DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_MAX_LENGTH = 8192
#: The device types torch names (``torch.device``), each optionally followed by ``:<index>``.
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "npu", "hpu", "mtia")
_DEVICE = re.compile(r"^(?P<type>[a-z]+)(:(?P<index>\d+))?$")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


def check_device(name: str, value: Any) -> str:
    """A torch device string: one of ``DEVICE_TYPES``, optionally with an index (``cuda``, ``cuda:1``, ``cpu``).

    Whether the device is there (a CUDA build of torch, that many GPUs) is checked when the model loads.
    """
    spelled = value.strip().lower() if isinstance(value, str) else None
    match = _DEVICE.match(spelled) if spelled else None
    if spelled is None or match is None or match.group("type") not in DEVICE_TYPES:
        raise ConfigurationError(
            f"{name} must be a device string like 'cuda', 'cuda:1', 'cpu' or 'mps' (one of {DEVICE_TYPES}, "
            f"optionally ':<index>'), not {value!r}"
        )
    return spelled


def check_attn_implementation(name: str, value: Any) -> str:
    """A transformers attention implementation name: one of ``ATTN_IMPLEMENTATIONS`` or a hub kernel's
    ``owner/repo`` name (as transformers accepts)."""
    if isinstance(value, str) and (value.strip() in ATTN_IMPLEMENTATIONS or "/" in value.strip()):
        return value.strip()
    raise ConfigurationError(
        f"{name} must be a non-empty string, one of {ATTN_IMPLEMENTATIONS} (or a hub kernel's 'owner/repo'), "
        f"not {value!r}"
    )


def check_dtype(name: str, value: Any) -> str:
    """One of ``DTYPES``, given as a string (``"bfloat16"``, ``"torch.bfloat16"``) or a ``torch.dtype``."""
    spelled = str(value).replace("torch.", "")
    if spelled not in DTYPES:
        raise ConfigurationError(f"{name} must be one of {DTYPES} (or None for the device's default), not {value!r}")
    return spelled


def check_path(name: str, value: Any) -> str:
    """A folder path (a string or ``os.PathLike``)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return text(name, value)


@dataclass(frozen=True, repr=False)
class LocalOptions(BackendOptions):
    """The local backend's options. Every one is optional; ``None`` means the default described.

    Example:
        >>> LocalOptions.from_given({"dtype": "torch.bfloat16"}).dtype
        'bfloat16'
    """

    BACKEND = "local"

    device: str | None = option(
        None, check=check_device, help="local: cuda, cuda:1, cpu, mps (default: CUDA if available, else CPU)"
    )
    dtype: str | None = option(
        None, check=check_dtype, choices=DTYPES, help="local: weights' precision (default bfloat16 on CUDA, float32)"
    )
    max_length: int = option(
        DEFAULT_MAX_LENGTH,
        check=whole(16),
        cli_type=int,
        help="most tokens per prompt (local, and the hosted exact mode); a document's tail is cut",
    )
    batch_tokens: int | None = option(
        None, check=whole(1), cli_type=int, help="local: padded document tokens per forward pass (default per device)"
    )
    num_threads: int | None = option(
        None,
        check=whole(1),
        cli_type=int,
        help="local: torch CPU threads while a call runs, then set back (default: torch's, one per core); on a "
        "machine other processes also use, the cores they leave free",
    )
    attn_implementation: str = option(
        "sdpa",
        check=check_attn_implementation,
        help="local: transformers attention implementation (sdpa, eager, flash_attention_2)",
    )
    revision: str | None = option(None, check=text, help="local: the hub revision (branch, tag or commit) to load")
    cache_dir: str | None = option(None, check=check_path, help="local: folder of the hub cache to load from")
    local_files_only: bool = option(
        False, check=check_bool, cli_type=bool, help="local: never download; load from the cache or a local path"
    )
    token: Any = option(None, check=check_secret, secret=True, cli=False, help="local: hub token for a private model")

    def check_together(self) -> None:
        if self.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
            raise ConfigurationError(
                "attn_implementation='flash_attention_2' needs the flash-attn package (CUDA only): "
                "pip install flash-attn --no-build-isolation; or use the default 'sdpa'"
            )

    def pretrained_kwargs(self) -> dict[str, Any]:
        """The hub arguments for ``from_pretrained`` (only those given, so transformers' defaults stay)."""
        kwargs: dict[str, Any] = {}
        for name in ("revision", "cache_dir"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        if self.local_files_only:
            kwargs["local_files_only"] = True
        if self.token is not None:
            kwargs["token"] = secret_text(self.token)
        return kwargs
