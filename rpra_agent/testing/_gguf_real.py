"""Tiny llama.cpp models that carry a real model's tokenizer (see :mod:`rpra_agent.testing.gguf`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rpra_agent.testing._gguf_vocab import (
    CHATML_TEMPLATE,
    GRADE_WORDS,
    block_tensors,
    copy_tokenizer_kvs,
    llama_hparams,
    write_raw_gguf,
)

__all__ = [
    "FAMILIES",
    "LLAMA3_TEMPLATE",
    "VOCAB_ENV",
    "family_vocab",
    "write_scripted_like",
    "write_tokenizer_gguf",
]

VOCAB_ENV = "RPRA_VOCAB_DIR"
"""Environment variable naming the directory that holds llama.cpp's ``ggml-vocab-*.gguf`` files."""

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
"""Meta's published Llama 3 Instruct chat template (llama.cpp's Llama 3 vocab file has none)."""

FAMILIES: dict[str, tuple[str, str | None]] = {
    "qwen2": ("ggml-vocab-qwen2.gguf", None),
    "llama3": ("ggml-vocab-llama-bpe.gguf", LLAMA3_TEMPLATE),
    "phi3": ("ggml-vocab-phi-3.gguf", None),
    "gemma": ("ggml-vocab-gemma-4.gguf", None),
    "command-r": ("ggml-vocab-command-r.gguf", None),
    "llama2": ("ggml-vocab-llama-spm.gguf", None),
}
"""Model family -> (llama.cpp vocab file, chat template to add). ``llama2`` keeps its lack of a template."""

_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<turn|>", "<|END_OF_TURN_TOKEN|>")
_GRADE_ANCHORS = ("\n", ":]\n")  # text before a grade: the assistant header, the self-check prefill
_MARGIN, _GRADE_MARGIN = 30.0, 15.0


def family_vocab(family: str, vocab_dir: str | os.PathLike[str] | None = None) -> Path:
    """The vocab file of ``family`` in ``vocab_dir`` (default: ``$RPRA_VOCAB_DIR``).

    Raises:
        ValueError: On an unknown family.
        FileNotFoundError: When the directory or the file is missing (with how to get it).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {sorted(FAMILIES)}")
    root = vocab_dir if vocab_dir is not None else os.environ.get(VOCAB_ENV)
    fix = (
        f"run scripts/test.sh (it extracts them), or set {VOCAB_ENV} to a directory holding "
        "vendor/llama.cpp/models/ggml-vocab-*.gguf from the llama-cpp-python sdist"
    )
    if not root:
        raise FileNotFoundError(f"{VOCAB_ENV} is not set: {fix}")
    path = Path(root) / FAMILIES[family][0]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {fix}")
    return path


def write_tokenizer_gguf(
    path: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str],
    seed: int = 0,
    n_embd: int = 32,
    n_layers: int = 2,
    n_ff: int = 64,
    n_ctx: int = 8192,
    chat_template: str | None = None,
) -> Path:
    """A random-weight llama GGUF with the complete tokenizer of the GGUF ``like`` (well under a second).

    Every ``tokenizer.*`` key/value and ``general.name`` is copied byte for byte (so
    llama.cpp tokenizes, detokenizes and applies special-token rules exactly as for
    the real model), the output layer is tied to the F16 embeddings.

    Args:
        path: Where to write.
        like: Any GGUF (a real model or a ``ggml-vocab-*.gguf``) whose tokenizer to copy.
        seed: Seed of the weights.
        n_embd: Width (a multiple of 8).
        n_layers: Transformer blocks.
        n_ff: Feed-forward width.
        n_ctx: Trained context recorded in the file.
        chat_template: Replace (or add) ``tokenizer.chat_template``.

    Returns:
        The path written.
    """
    if n_embd % 8:
        raise ValueError("n_embd must be a multiple of 8")
    kvs, n_vocab = copy_tokenizer_kvs(Path(like), chat_template=chat_template)
    rng = np.random.default_rng(seed)
    # Uniform in [-1, 1) from 16-bit integers: four times faster than normals on a 262k vocabulary.
    embd = rng.integers(-(1 << 15), 1 << 15, size=(n_vocab, n_embd), dtype=np.int16).astype(np.float16)
    tensors = {"token_embd.weight": embd * np.float16(1.0 / (1 << 15))}
    tensors.update(block_tensors(n_embd=n_embd, n_ff=n_ff, n_layers=n_layers, rng=rng))
    hparams = llama_hparams(n_embd=n_embd, n_layers=n_layers, n_ff=n_ff, n_ctx=n_ctx, n_vocab=n_vocab)
    return write_raw_gguf(Path(path), kvs=kvs, hparams=hparams, tensors=tensors)


class _Vocab:
    """llama.cpp's tokenizer for a GGUF, loaded vocabulary-only (no weights, no context) and cached."""

    _cache: ClassVar[dict[tuple[str, float], _Vocab]] = {}

    def __init__(self, path: Path) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self.model = LlamaModel(path_model=str(path), params=params, verbose=False)

    @classmethod
    def of(cls, path: Path) -> _Vocab:
        key = (str(path.resolve()), path.stat().st_mtime)
        if key not in cls._cache:
            cls._cache[key] = cls(path)
        return cls._cache[key]

    def tokenize(self, text: bytes, *, add_bos: bool, special: bool) -> list[int]:
        return list(self.model.tokenize(text, add_bos, special))

    def piece(self, token: int) -> bytes:
        return bytes(self.model.detokenize([token], False))

    def token_eos(self) -> int:
        return int(self.model.token_eos())

    def template(self) -> str | None:
        value = self.model.metadata().get("tokenizer.chat_template")
        return value if isinstance(value, str) else None


def _in_context(vocab: Any, anchor: str, text: str) -> list[int]:
    """Tokens of ``text`` as the model writes it right after ``anchor`` (no space prefix of its own)."""
    base = vocab.tokenize(anchor.encode(), add_bos=False, special=False)
    full = vocab.tokenize((anchor + text).encode(), add_bos=False, special=False)
    if full[: len(base)] == base and len(full) > len(base):
        return list(full[len(base) :])
    return list(vocab.tokenize(text.encode(), add_bos=False, special=False))


def _end_of_turn(vocab: Any) -> int:
    for text in _END_OF_TURN:
        toks = vocab.tokenize(text.encode(), add_bos=False, special=True)
        if len(toks) == 1:
            return int(toks[0])
    return int(vocab.token_eos())


def _prompt_anchor(vocab: Any, template: str | None) -> int:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    fmt = Jinja2ChatFormatter(
        template=template or CHATML_TEMPLATE, eos_token="", bos_token="", add_generation_prompt=True
    )
    prompt = fmt(messages=[{"role": "user", "content": "Hi"}]).prompt
    return int(vocab.tokenize(prompt.encode(), add_bos=False, special=True)[-1])


def write_scripted_like(
    path: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str],
    reply: str,
    grade: str | None = None,
    grades: Sequence[str] = GRADE_WORDS,
    grade_text: str | None = None,
    n_layers: int = 2,
    n_ctx: int = 8192,
    chat_template: str | None = None,
) -> Path:
    """A scripted model with the tokenizer of ``like``: it always replies ``reply`` and predicts ``grade``.

    "A scripted model with the tokenizer of the model you deploy": pass the path of
    your real GGUF as ``like``; the result replies ``reply`` (then ends its turn) to
    any chat prompt, and reading the grade distribution over ``grades`` after the
    assistant header (or after a self-check ending ``:]`` and a newline) puts nearly
    all its mass on ``grade``. It works as :func:`~rpra_agent.testing.gguf.write_scripted_gguf`
    does (a bigram table), so the reply's tokens, as the tokenizer cuts them after a
    newline, must be distinct, and distinct from the grade's tokens.

    Args:
        path: Where to write.
        like: The GGUF whose tokenizer (and chat template) to copy.
        reply: What the model answers.
        grade: The grade it predicts (one of ``grades``), or ``None``.
        grades: The grade labels.
        grade_text: How the model spells the grade (default ``grade``; e.g. ``" 10"``
            or ``"Great"``, to test that every spelling is read as its label).
        n_layers: Transformer blocks (inert).
        n_ctx: Trained context recorded in the file.
        chat_template: Replace (or add) the chat template.

    Returns:
        The path written.

    Raises:
        ValueError: When the reply or grade cannot be scripted on this tokenizer.
    """
    if grade is not None and grade not in grades:
        raise ValueError(f"grade {grade!r} is not one of {list(grades)}")
    kvs, n_vocab = copy_tokenizer_kvs(Path(like), chat_template=chat_template)
    vocab = _Vocab.of(Path(like))
    template = chat_template if chat_template is not None else vocab.template()
    end = _end_of_turn(vocab)
    anchors = {_prompt_anchor(vocab, template)}
    anchors |= {int(vocab.tokenize(a.encode(), add_bos=False, special=False)[-1]) for a in _GRADE_ANCHORS}
    reply_toks = _in_context(vocab, "\n", reply)
    decoded = b"".join(vocab.piece(t) for t in reply_toks).decode("utf-8", "replace")
    if decoded != reply:
        raise ValueError(f"reply {reply!r} does not round-trip through this tokenizer (got {decoded!r})")
    grade_toks = _in_context(vocab, "\n", grade_text or grade) if grade is not None else []
    chain = reply_toks + grade_toks
    if len(set(chain)) != len(chain) or anchors & set(chain) or end in chain:
        raise ValueError(f"reply {reply!r} and grade {grade!r} need distinct tokens here; vary the reply's text")
    sources = sorted(anchors) + chain
    n_embd = max(64, -(-len(sources) // 64) * 64)
    unit = 1.0 / float(np.sqrt(n_embd))
    embd = np.zeros((n_vocab, n_embd), dtype=np.float16)
    output = np.zeros((n_vocab, n_embd), dtype=np.float16)
    dim = {tok: i for i, tok in enumerate(sources)}
    embd[sources, np.arange(len(sources))] = 1.0
    for a in anchors:
        output[reply_toks[0], dim[a]] = _MARGIN * unit
        if grade_toks:
            output[grade_toks[0], dim[a]] = _GRADE_MARGIN * unit
    for seq in (s for s in (reply_toks, grade_toks) if s):
        for cur, nxt in zip(seq, [*seq[1:], end], strict=True):
            output[nxt, dim[cur]] = _MARGIN * unit
    tensors = {"token_embd.weight": embd, **block_tensors(n_embd=n_embd, n_ff=64, n_layers=n_layers, rng=None)}
    tensors["output.weight"] = output
    hparams = llama_hparams(n_embd=n_embd, n_layers=n_layers, n_ff=64, n_ctx=n_ctx, n_vocab=n_vocab)
    return write_raw_gguf(Path(path), kvs=kvs, hparams=hparams, tensors=tensors)
