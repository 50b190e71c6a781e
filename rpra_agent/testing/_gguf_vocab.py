"""Vocabulary and reply segmentation for the synthesized GGUF models (see :mod:`rpra_agent.testing.gguf`)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "CHATML_TEMPLATE",
    "GRADE_WORDS",
    "base_vocab",
    "block_tensors",
    "copy_tokenizer_kvs",
    "escape",
    "llama_hparams",
    "scripted_pieces",
    "word_tokens",
    "write_raw_gguf",
]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""The ChatML chat template written into every synthesized model."""

GRADE_WORDS: tuple[str, ...] = ("bad", "ok", "great")
"""The paper's grade words; their first tokens (``b``, ``o``, ``g``) differ."""

_SPECIALS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
_UNK, _BOS, _EOS_TEXT, _IM_START, _IM_END = range(5)
_SPACE = "\u2581"
_ANCHOR = "\n"  # the last character of every chat prompt (``assistant\n``)
_HEADER = "assistant\n"
_MARGIN = 30.0
_GRADE_MARGIN = 15.0
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6
_MAX_PIECE_BYTES = 31  # llama-cpp-python detokenizes through a 32-byte buffer


def base_vocab() -> tuple[list[str], list[int]]:
    """Special tokens, the 256 byte tokens and printable ASCII (space as ``▁``), with token types."""
    tokens = list(_SPECIALS)
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [_BYTE] * 256
    tokens += [_SPACE] + [chr(c) for c in range(0x21, 0x7F)]
    types += [_NORMAL] * 95
    return tokens, types


def escape(text: str) -> str:
    """A text as a SentencePiece token string (spaces as ``▁``)."""
    return text.replace(" ", _SPACE)


def scripted_pieces(reply: str, *, grade: str | None = None, grades: Sequence[str] = GRADE_WORDS) -> list[str]:
    """How :func:`~rpra_agent.testing.gguf.write_scripted_gguf` cuts ``reply`` into generated tokens.

    Pieces are distinct (a bigram model gives each token one successor); a piece
    longer than one character is never a substring of a grade word or of the
    assistant header and never ends with a newline (so it cannot change how those,
    or any prompt ending in a newline, tokenize); the newline alone is never a piece
    (it ends every prompt); and the first piece is never the first
    character of another grade (so it cannot shift the grade distribution).

    Args:
        reply: The text the model will generate.
        grade: The grade the model predicts, if any.
        grades: All grade words.

    Returns:
        The pieces, whose concatenation is ``reply``.

    Raises:
        ValueError: When the reply is empty, contains ``▁``, or cannot be cut.
    """
    if not reply:
        raise ValueError("reply must be a non-empty string")
    if _SPACE in reply:
        raise ValueError("reply must not contain U+2581 (it stands for the space in the vocabulary)")
    reserved = [*grades, _HEADER]
    forbidden_first = {g[0] for g in grades if g != grade} if grade is not None else set()
    specials = set(_SPECIALS) | {f"<0x{b:02X}>" for b in range(256)}
    used: set[str] = set()

    def acceptable(piece: str, first: bool) -> bool:
        if piece in used or escape(piece) in specials or (first and piece in forbidden_first):
            return False
        if len(piece) == 1:
            return piece != _ANCHOR
        return not piece.endswith(_ANCHOR) and not any(piece in r for r in reserved)

    pieces: list[str] = []
    i = 0
    while i < len(reply):
        j = i + 1
        while not acceptable(reply[i:j], not pieces) and j < len(reply):
            j += 1
        piece = reply[i:j]
        while not acceptable(piece, not pieces):
            if not pieces:
                raise ValueError(f"cannot cut reply {reply!r} into distinct pieces; try a longer reply")
            prev = pieces.pop()
            used.discard(prev)
            piece = prev + piece
        if len(piece.encode("utf-8")) > _MAX_PIECE_BYTES:
            raise ValueError(f"reply {reply!r} needs a piece longer than {_MAX_PIECE_BYTES} bytes; vary its text")
        pieces.append(piece)
        used.add(piece)
        i = j
    return pieces


def word_tokens(words: Iterable[str], *, reserved: Sequence[str] = ()) -> list[str]:
    """Token strings that let the SentencePiece tokenizer merge ``words`` into whole-word tokens.

    Each word gets every prefix of two or more characters, bare and after ``▁`` (a
    space), so a merge path exists. A bare prefix that is a substring of a
    ``reserved`` string is skipped (it would change how that string tokenizes).
    """
    out: dict[str, None] = {}
    for word in words:
        for form in (word, " " + word):
            for end in range(2, len(form) + 1):
                prefix = form[:end]
                if len(prefix.encode("utf-8")) > _MAX_PIECE_BYTES or _SPACE in word or _ANCHOR in prefix:
                    break
                if prefix[0] != " " and any(prefix in r for r in reserved):
                    continue
                out[escape(prefix)] = None
    return list(out)


# -- GGUFs that copy a real tokenizer byte for byte ---------------------------------------------
_ALIGN = 32
_U32, _F32, _BOOL, _STRING = 4, 6, 7, 8
_F32_TYPE, _F16_TYPE = 0, 1


def _gguf_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _gguf_kv(key: str, value: str | int | float | bool) -> bytes:
    if isinstance(value, bool):
        return _gguf_string(key) + struct.pack("<I?", _BOOL, value)
    if isinstance(value, int):
        return _gguf_string(key) + struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return _gguf_string(key) + struct.pack("<If", _F32, value)
    return _gguf_string(key) + struct.pack("<I", _STRING) + _gguf_string(value)


def copy_tokenizer_kvs(source: Path, *, chat_template: str | None = None) -> tuple[list[bytes], int]:
    """The raw ``tokenizer.*`` and ``general.name`` key/value bytes of ``source``, and its vocabulary size.

    ``chat_template`` replaces the file's ``tokenizer.chat_template`` (or adds one).
    """
    from rpra_agent.models.gguf_file import read_gguf_header

    header = read_gguf_header(source)
    raw = source.read_bytes()[: max(end for _, end in header.spans.values())]
    keys = [k for k in header.spans if k.startswith("tokenizer.") or k == "general.name"]
    if chat_template is not None:
        keys = [k for k in keys if k != "tokenizer.chat_template"]
    out = [raw[header.spans[k][0] : header.spans[k][1]] for k in keys]
    if chat_template is not None:
        out.append(_gguf_kv("tokenizer.chat_template", chat_template))
    tokens = header.fields.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list):
        raise ValueError(f"{source} has no tokenizer.ggml.tokens")
    return out, len(tokens)


def write_raw_gguf(
    path: Path, *, kvs: list[bytes], hparams: dict[str, str | int | float | bool], tensors: dict[str, np.ndarray]
) -> Path:
    """Write a GGUF v3 file from raw key/value bytes, plain hyperparameters and F32/F16 numpy tensors."""
    items = [_gguf_kv(k, v) for k, v in hparams.items()] + kvs
    infos, offset, blobs = [], 0, []
    for name, arr in tensors.items():
        gtype = {np.dtype(np.float32): _F32_TYPE, np.dtype(np.float16): _F16_TYPE}[arr.dtype]
        dims = arr.shape[::-1]
        infos.append(
            _gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
            + struct.pack("<IQ", gtype, offset)
        )  # fmt: skip
        data = np.ascontiguousarray(arr).tobytes()
        pad = -len(data) % _ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(items)) + b"".join(items) + b"".join(infos)
    head += b"\0" * (-len(head) % _ALIGN)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(head)
        for blob in blobs:
            fh.write(blob)
    return path


def llama_hparams(
    *, n_embd: int, n_layers: int, n_ff: int, n_ctx: int, n_vocab: int
) -> dict[str, str | int | float | bool]:
    """``general.architecture=llama`` hyperparameters: 4 heads, 2 KV heads, F16 weights."""
    return {
        "general.architecture": "llama", "llama.context_length": n_ctx, "llama.embedding_length": n_embd,
        "llama.block_count": n_layers, "llama.feed_forward_length": n_ff, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2, "llama.rope.dimension_count": n_embd // 4,
        "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.vocab_size": n_vocab, "general.file_type": 1,
    }  # fmt: skip


def block_tensors(*, n_embd: int, n_ff: int, n_layers: int, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """Per-block llama tensors (F16), random or, for ``rng=None``, with a residual-preserving zero output."""
    n_kv = n_embd // 2

    def mat(rows: int, cols: int, zero: bool = False) -> np.ndarray:
        if rng is None or zero:
            return np.zeros((rows, cols), dtype=np.float16)
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    ones = np.ones(n_embd, dtype=np.float32)
    out: dict[str, np.ndarray] = {}
    for b in range(n_layers):
        out[f"blk.{b}.attn_norm.weight"] = ones
        out[f"blk.{b}.attn_q.weight"] = mat(n_embd, n_embd)
        out[f"blk.{b}.attn_k.weight"] = mat(n_kv, n_embd)
        out[f"blk.{b}.attn_v.weight"] = mat(n_kv, n_embd)
        out[f"blk.{b}.attn_output.weight"] = mat(n_embd, n_embd, zero=rng is None)
        out[f"blk.{b}.ffn_norm.weight"] = ones
        out[f"blk.{b}.ffn_gate.weight"] = mat(n_ff, n_embd)
        out[f"blk.{b}.ffn_up.weight"] = mat(n_ff, n_embd)
        out[f"blk.{b}.ffn_down.weight"] = mat(n_embd, n_ff, zero=rng is None)
    out["output_norm.weight"] = ones
    return out
