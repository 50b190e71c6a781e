"""Check a GGUF file before llama.cpp sees it (a malformed file aborts the whole process in C), then load it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rpra_agent.core.errors import ConfigError
from rpra_agent.models.gguf_file import GGUFFormatError, TensorInfo, read_gguf_header

__all__ = ["GGUFInfo", "check_gguf", "default_n_ctx", "load_llama"]

logger = logging.getLogger(__name__)

_MAGIC = b"GGUF"
_CONTROL, _USER = 3, 4  # tokenizer.ggml.token_type values
_FIX = "Pass the path of a llama.cpp GGUF model, e.g. gguf:/models/qwen2.5-0.5b-instruct-q4_k_m.gguf."


@dataclass(frozen=True)
class GGUFInfo:
    """What the header says about a model.

    Attributes:
        path: The absolute path.
        architecture: ``general.architecture`` (e.g. ``llama``).
        name: ``general.name``, or the file name.
        n_vocab: Number of tokens in the vocabulary.
        chat_template: ``tokenizer.chat_template``, if any.
        context_length: The trained context (``<arch>.context_length``), 0 if absent.
        kv_bytes_per_token: KV-cache bytes one token takes at f16 (0 if unknown).
        special_texts: Texts of the CONTROL and USER_DEFINED tokens (llama.cpp
            matches USER_DEFINED ones in text even with special tokens disabled).
    """

    path: Path
    architecture: str
    name: str
    n_vocab: int
    chat_template: str | None
    context_length: int = 0
    kv_bytes_per_token: int = 0
    special_texts: tuple[str, ...] = ()


def _int(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key)
    if isinstance(value, np.ndarray):  # per-layer arrays (e.g. head_count_kv): the largest
        return int(value.max()) if value.size else 0
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else 0


def _kv_bytes(fields: dict[str, Any], arch: str) -> int:
    n_layer, n_embd = _int(fields, f"{arch}.block_count"), _int(fields, f"{arch}.embedding_length")
    n_head = _int(fields, f"{arch}.attention.head_count")
    n_head_kv = _int(fields, f"{arch}.attention.head_count_kv") or n_head
    if not (n_layer and n_embd and n_head):
        return 0
    k_len = _int(fields, f"{arch}.attention.key_length") or n_embd // n_head
    v_len = _int(fields, f"{arch}.attention.value_length") or n_embd // n_head
    return 2 * n_layer * n_head_kv * (k_len + v_len)  # f16 K and V


def _special_texts(fields: dict[str, Any], tokens: list[bytes]) -> tuple[str, ...]:
    types = fields.get("tokenizer.ggml.token_type")
    if not isinstance(types, np.ndarray) or types.shape[0] != len(tokens):
        return ()
    texts = (tokens[i].decode("utf-8", "replace") for i in np.nonzero((types == _CONTROL) | (types == _USER))[0])
    return tuple(sorted({t for t in texts if len(t) > 1 and t.strip()}, key=lambda t: (-len(t), t)))


def _tensor_bytes(tensor: TensorInfo, path: Path) -> int:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.ggml_type)]
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: tensor {tensor.name!r} has unknown ggml type {tensor.ggml_type}.") from exc
    n = int(np.prod(tensor.shape, dtype=np.int64)) if tensor.shape else 1
    return n // block * size


def check_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate a GGUF model file and read its header (about 0.2 s on a 262k vocabulary).

    Checks, in order: the path exists and is a readable file; it starts with the
    GGUF magic; the header and metadata parse; the architecture and token list are
    present; no two tokens share a string; the tensor data lies inside the file.

    Args:
        path: The model file.

    Returns:
        The header facts.

    Raises:
        ConfigError: With what is wrong and how to fix it.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"GGUF model file not found: {p}. {_FIX}")
    if p.is_dir():
        raise ConfigError(f"{p} is a directory, not a GGUF file. {_FIX}")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}. Check the file's permissions.") from exc
    if magic != _MAGIC:
        raise ConfigError(
            f"{p} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). Convert the model with llama.cpp's "
            "convert_hf_to_gguf.py, or download a .gguf build of it."
        )
    try:
        header = read_gguf_header(p)
    except (GGUFFormatError, OSError) as exc:
        raise ConfigError(f"{p} has a corrupt, truncated or unsupported GGUF header ({exc}). {_FIX}") from exc
    fields = header.fields
    arch, tokens = fields.get("general.architecture"), fields.get("tokenizer.ggml.tokens")
    if not isinstance(arch, str) or not arch:
        raise ConfigError(f"{p} has no general.architecture in its header; the file is incomplete.")
    if not isinstance(tokens, list) or not tokens:
        raise ConfigError(f"{p} has no tokenizer.ggml.tokens; llama.cpp cannot load a model without a vocabulary.")
    if len(set(tokens)) != len(tokens):
        seen: set[bytes] = set()
        dupes = [t.decode("utf-8", "replace") for t in tokens if t in seen or seen.add(t)]  # type: ignore[func-returns-value]
        raise ConfigError(f"{p} has duplicate token strings (e.g. {dupes[:3]!r}); llama.cpp would abort on it.")
    size = p.stat().st_size
    for tensor in header.tensors:
        end = header.data_offset + tensor.offset + _tensor_bytes(tensor, p)
        if end > size:
            raise ConfigError(f"{p} is truncated: tensor {tensor.name!r} ends at byte {end} but the file has {size}.")
    name, template = fields.get("general.name"), fields.get("tokenizer.chat_template")
    return GGUFInfo(
        path=p.resolve(),
        architecture=arch,
        name=name if isinstance(name, str) and name else p.name,
        n_vocab=len(tokens),
        chat_template=template if isinstance(template, str) and template else None,
        context_length=_int(fields, f"{arch}.context_length"),
        kv_bytes_per_token=_kv_bytes(fields, arch),
        special_texts=_special_texts(fields, tokens),
    )


_FALLBACK_CTX = 4096


_FALLBACK_CTX = 4096


def default_n_ctx(info: GGUFInfo, kv_cache_mb: float) -> int:
    """The model's trained context, capped so the f16 KV cache fits ``kv_cache_mb`` (at least 512 tokens)."""
    trained = info.context_length or _FALLBACK_CTX
    if info.kv_bytes_per_token <= 0:
        return min(trained, _FALLBACK_CTX)
    budget = int(kv_cache_mb * 2**20) // info.kv_bytes_per_token
    return max(512, min(trained, budget))


def load_llama(info: GGUFInfo, params: dict[str, Any]) -> Any:
    """Open a checked model with ``llama_cpp.Llama``; failures become :class:`ConfigError`."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ConfigError("the llama.cpp backend needs llama-cpp-python: pip install 'rpra-agent[llama]'") from exc
    try:
        return Llama(model_path=str(info.path), **params)
    except Exception as exc:
        raise ConfigError(f"llama.cpp could not load {info.path}: {exc}") from exc
