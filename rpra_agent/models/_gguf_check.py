"""Check a GGUF file before llama.cpp sees it (a malformed file aborts the whole process in C), then load it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["GGUFInfo", "chat_formatter", "check_gguf", "load_llama"]

logger = logging.getLogger(__name__)

_MAGIC = b"GGUF"
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
    """

    path: Path
    architecture: str
    name: str
    n_vocab: int
    chat_template: str | None


def _reader(path: Path) -> Any:
    try:
        import gguf
    except ImportError as exc:  # pragma: no cover - the extra installs it
        raise ConfigError("reading GGUF files needs the gguf package: pip install 'rpra-agent[llama]'") from exc
    try:
        return gguf.GGUFReader(str(path))
    except Exception as exc:
        raise ConfigError(f"{path} has a corrupt, truncated or unsupported GGUF header ({exc}). {_FIX}") from exc


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    try:
        return field.contents()
    except Exception as exc:
        raise ConfigError(f"{reader.path}: metadata {key!r} is unreadable ({exc}); the file is corrupt.") from exc


def check_gguf(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate a GGUF model file and read its header.

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
    reader = _reader(p)
    arch = _field(reader, "general.architecture")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if not isinstance(arch, str) or not arch:
        raise ConfigError(f"{p} has no general.architecture in its header; the file is incomplete.")
    if not isinstance(tokens, list) or not tokens:
        raise ConfigError(f"{p} has no tokenizer.ggml.tokens; llama.cpp cannot load a model without a vocabulary.")
    if len(set(tokens)) != len(tokens):
        seen: set[str] = set()
        dupes = [t for t in tokens if t in seen or seen.add(t)]  # type: ignore[func-returns-value]
        raise ConfigError(f"{p} has duplicate token strings (e.g. {dupes[:3]!r}); llama.cpp would abort on it.")
    size = p.stat().st_size
    for tensor in reader.tensors:
        end = int(tensor.data_offset) + int(tensor.n_bytes)
        if end > size:
            raise ConfigError(f"{p} is truncated: tensor {tensor.name!r} ends at byte {end} but the file has {size}.")
    name = _field(reader, "general.name")
    template = _field(reader, "tokenizer.chat_template")
    return GGUFInfo(
        path=p.resolve(),
        architecture=arch,
        name=name if isinstance(name, str) and name else p.name,
        n_vocab=len(tokens),
        chat_template=template if isinstance(template, str) and template else None,
    )


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


def chat_formatter(llama: Any, template: str | None, name: str) -> Any:
    """A Jinja chat formatter for ``template`` (ChatML, with a warning, when the file has none)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from rpra_agent.models._llama_prompt import CHATML_TEMPLATE

    if template is None:
        logger.warning("%s has no chat template; using ChatML (pass chat_template= to override)", name)
        template = CHATML_TEMPLATE
    model = llama._model
    eos = model.token_get_text(llama.token_eos()) if llama.token_eos() >= 0 else ""
    bos = model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
    return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
