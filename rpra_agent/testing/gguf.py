"""Synthesize tiny, real llama-architecture GGUF models for tests (no downloads).

With the tokenizer of the model you deploy (any GGUF, or llama.cpp's
``ggml-vocab-*.gguf`` files, see :data:`FAMILIES` and :func:`family_vocab`):

- :func:`write_tokenizer_gguf`: random weights, the file's complete tokenizer
  (every ``tokenizer.*`` key copied byte for byte).
- :func:`write_scripted_like`: "a scripted model with the tokenizer of the model you
  deploy": it replies ``reply`` to any chat prompt and predicts ``grade``.

With a toy vocabulary, the two writers below produce a file that llama.cpp loads in milliseconds: a llama model
(2 blocks, 4 heads, 2 KV heads), a SentencePiece-style vocabulary (special tokens
``<unk> <s> </s> <|im_start|> <|im_end|>``, the 256 ``<0xNN>`` byte tokens, printable
ASCII with the space as ``▁``) and a ChatML chat template. ``<|im_end|>`` is the
end-of-turn (EOS) token.

- :func:`write_random_gguf`: random weights. Use it to exercise plumbing (loading,
  streaming, grammars, logprobs, timings) where the text does not matter.
- :func:`write_scripted_gguf`: a model that deterministically replies ``reply`` to
  *any* chat prompt, then ends its turn; and, when ``grade`` is given, whose
  next-token distribution at the end of any chat prompt, renormalised over the grade
  words' first tokens, puts (nearly) all its mass on ``grade``. So it drives a
  self-predictor ("the model predicts ``grade``") and an answer leg ("the model
  answers ``reply``") through real llama.cpp with exact expected outputs.

How the scripted model works: the embeddings are one-hot (``n_embd >= n_vocab``),
``attn_output`` and ``ffn_down`` are zero, so the residual stream at each position is
the current token's one-hot vector and ``output.weight`` becomes a bigram table: the
next token depends only on the current one. Every chat prompt ends with the ChatML
assistant header (``<|im_start|>assistant`` and a newline), whose last token is the byte token
``<0x0A>``; its row gives the reply's first piece a logit margin of 30 and the
grade's first character a margin of 15 (so free generation emits the reply, while
renormalising over ``b``/``o``/``g`` picks the grade). The reply is cut into
*distinct* pieces (multi-character pieces are added to the vocabulary), each with a
single successor, and the last piece is followed by ``<|im_end|>``.

Example (pytest)::

    from rpra_agent.testing.gguf import write_scripted_gguf
    from rpra_agent.models import load_chat_model

    def test_my_agent(tmp_path):
        path = write_scripted_gguf(tmp_path / "m.gguf", reply="Paris.", grade="great")
        model = load_chat_model(f"gguf:{path}")
        assert model.invoke("Capital of France?").content == "Paris."
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rpra_agent.testing._gguf_real import (
    FAMILIES,
    LLAMA3_TEMPLATE,
    VOCAB_ENV,
    family_vocab,
    write_scripted_like,
    write_tokenizer_gguf,
)
from rpra_agent.testing._gguf_vocab import (
    _BOS,
    _GRADE_MARGIN,
    _HEADER,
    _IM_END,
    _MARGIN,
    _NORMAL,
    _UNK,
    CHATML_TEMPLATE,
    GRADE_WORDS,
    base_vocab,
    escape,
    scripted_pieces,
    word_tokens,
)

__all__ = [
    "CHATML_TEMPLATE",
    "FAMILIES",
    "GRADE_WORDS",
    "LLAMA3_TEMPLATE",
    "VOCAB_ENV",
    "family_vocab",
    "scripted_pieces",
    "write_random_gguf",
    "write_scripted_gguf",
    "write_scripted_like",
    "write_tokenizer_gguf",
]


def _llama_tensors(
    *, vocab: int, n_embd: int, n_ff: int, n_layers: int, rng: np.random.Generator | None
) -> dict[str, np.ndarray]:
    n_kv = n_embd // 2  # 4 heads, 2 KV heads

    def mat(rows: int, cols: int, zero: bool = False) -> np.ndarray:
        if rng is None or zero:
            return np.zeros((rows, cols), dtype=np.float32)
        return rng.normal(0.0, 0.02, size=(rows, cols)).astype(np.float32)

    ones = np.ones(n_embd, dtype=np.float32)
    scripted = rng is None
    tensors: dict[str, np.ndarray] = {}
    for b in range(n_layers):
        tensors[f"blk.{b}.attn_norm.weight"] = ones
        tensors[f"blk.{b}.attn_q.weight"] = mat(n_embd, n_embd)
        tensors[f"blk.{b}.attn_k.weight"] = mat(n_kv, n_embd)
        tensors[f"blk.{b}.attn_v.weight"] = mat(n_kv, n_embd)
        tensors[f"blk.{b}.attn_output.weight"] = mat(n_embd, n_embd, zero=scripted)
        tensors[f"blk.{b}.ffn_norm.weight"] = ones
        tensors[f"blk.{b}.ffn_gate.weight"] = mat(n_ff, n_embd)
        tensors[f"blk.{b}.ffn_up.weight"] = mat(n_ff, n_embd)
        tensors[f"blk.{b}.ffn_down.weight"] = mat(n_embd, n_ff, zero=scripted)
    tensors["output_norm.weight"] = ones
    return tensors


def _write(
    path: str | Path,
    *,
    tokens: list[str],
    types: list[int],
    token_embd: np.ndarray,
    output: np.ndarray,
    blocks: dict[str, np.ndarray],
    n_ff: int,
    n_layers: int,
    n_ctx: int,
    name: str,
    chat_template: str | None,
) -> Path:
    import gguf  # lazy: optional dependency

    if len(set(tokens)) != len(tokens):
        dupes = sorted({t for t in tokens if tokens.count(t) > 1})
        raise ValueError(f"duplicate token strings {dupes[:5]} (llama.cpp would abort)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_embd = token_embd.shape[1]
    w = gguf.GGUFWriter(str(out), arch="llama")
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(n_embd // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([float(len(tok)) if t == _NORMAL else 0.0 for tok, t in zip(tokens, types, strict=True)])
    w.add_token_types(types)
    w.add_unk_token_id(_UNK)
    w.add_bos_token_id(_BOS)
    w.add_eos_token_id(_IM_END)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    w.add_tensor("token_embd.weight", token_embd)
    for key, value in blocks.items():
        w.add_tensor(key, value)
    w.add_tensor("output.weight", output)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _extend(tokens: list[str], types: list[int], extra: Sequence[str]) -> dict[str, int]:
    index = {t: i for i, t in enumerate(tokens)}
    for text in extra:
        if text not in index:
            index[text] = len(tokens)
            tokens.append(text)
            types.append(_NORMAL)
    return index


def write_random_gguf(
    path: str | Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layers: int = 2,
    n_ff: int = 128,
    n_ctx: int = 2048,
    words: Sequence[str] = (),
    chat_template: str | None = CHATML_TEMPLATE,
    name: str = "rpra-random",
) -> Path:
    """Write a llama-architecture GGUF with random weights (well under a second).

    Args:
        path: Where to write the file (parent directories are created).
        seed: Seed of the weights; the same arguments write the same file.
        n_embd: Embedding width (a multiple of 8).
        n_layers: Number of transformer blocks.
        n_ff: Feed-forward width.
        n_ctx: Training context length recorded in the file.
        words: Whole words to add to the vocabulary (with their prefixes), so text
            made of them tokenizes about one token per word instead of per character.
        chat_template: Jinja chat template (ChatML by default; ``None`` writes none).
        name: ``general.name``.

    Returns:
        The path written.
    """
    if n_embd % 8:
        raise ValueError("n_embd must be a multiple of 8")
    rng = np.random.default_rng(seed)
    tokens, types = base_vocab()
    _extend(tokens, types, word_tokens(words))
    vocab = len(tokens)
    embd = rng.normal(0.0, 1.0, size=(vocab, n_embd)).astype(np.float32)
    output = rng.normal(0.0, 0.5, size=(vocab, n_embd)).astype(np.float32)
    blocks = _llama_tensors(vocab=vocab, n_embd=n_embd, n_ff=n_ff, n_layers=n_layers, rng=rng)
    return _write(
        path, tokens=tokens, types=types, token_embd=embd, output=output, blocks=blocks,
        n_ff=n_ff, n_layers=n_layers, n_ctx=n_ctx, name=name, chat_template=chat_template,
    )  # fmt: skip


def write_scripted_gguf(
    path: str | Path,
    *,
    reply: str,
    grade: str | None = None,
    grades: Sequence[str] = GRADE_WORDS,
    words: Sequence[str] = (),
    n_layers: int = 2,
    n_ctx: int = 2048,
    name: str = "rpra-scripted",
) -> Path:
    """Write a GGUF that always replies ``reply`` and, optionally, predicts ``grade``.

    Free generation after any chat prompt emits exactly ``reply`` and then
    ``<|im_end|>`` (each token with logprob near 0). When ``grade`` is given, the
    distribution at the last prompt position renormalised over the first tokens of
    ``grades`` puts more than 0.999 of its mass on ``grade``. See the module
    docstring for how it works and :func:`scripted_pieces` for the tokens generated.

    Args:
        path: Where to write the file.
        reply: The reply, any non-empty text without ``▁``.
        grade: One of ``grades``, or ``None``.
        grades: The grade words; their first characters must differ.
        words: Whole words to add to the vocabulary (see :func:`write_random_gguf`);
            prefixes that would change how a grade word tokenizes are left out.
        n_layers: Number of (inert) transformer blocks.
        n_ctx: Training context length recorded in the file.
        name: ``general.name``.

    Returns:
        The path written.

    Raises:
        ValueError: On a grade not in ``grades``, grade words with a shared first
            character, or a reply that cannot be scripted.
    """
    grades = tuple(grades)
    if len({g[:1] for g in grades}) != len(grades) or not all(grades):
        raise ValueError(f"grade words must be non-empty with distinct first characters, got {grades}")
    if grade is not None and grade not in grades:
        raise ValueError(f"grade {grade!r} is not one of {grades}")
    pieces = scripted_pieces(reply, grade=grade, grades=grades)
    tokens, types = base_vocab()
    # Each grade word is one token (with its prefixes, so the tokenizer reaches it), so
    # the grade reader, which scores whole label sequences, sees one step per grade.
    grade_words = [escape(p) for g in grades for p in (g[:i] for i in range(2, len(g) + 1))]
    extra = [escape(p) for p in pieces] + [escape(g[0]) for g in grades] + grade_words
    index = _extend(tokens, types, extra + word_tokens(words, reserved=[*grades, _HEADER]))
    vocab = len(tokens)
    # Only the tokens that precede a generated token need a direction of their own; the
    # rest embed to zero (RMSNorm keeps zero at zero, so their logits are flat).
    chain = [index["<0x0A>"], *(index[escape(p)] for p in pieces), _IM_END]
    grade_tok = index[escape(grade)] if grade is not None else None
    sources = chain[:-1] + ([grade_tok] if grade_tok is not None else [])
    n_embd = max(64, -(-len(sources) // 64) * 64)
    embd = np.zeros((vocab, n_embd), dtype=np.float32)
    embd[sources, np.arange(len(sources))] = 1.0
    # RMSNorm turns the one-hot residual into sqrt(n_embd) * e_i; scale so logits hit the margin.
    unit = 1.0 / float(np.sqrt(n_embd))
    output = np.zeros((vocab, n_embd), dtype=np.float32)
    for dim, nxt in enumerate(chain[1:]):
        output[nxt, dim] = _MARGIN * unit
    if grade_tok is not None:
        output[grade_tok, 0] = max(output[grade_tok, 0], _GRADE_MARGIN * unit)
        output[_IM_END, len(sources) - 1] = _MARGIN * unit
    blocks = _llama_tensors(vocab=vocab, n_embd=n_embd, n_ff=64, n_layers=n_layers, rng=None)
    return _write(
        path, tokens=tokens, types=types, token_embd=embd, output=output, blocks=blocks,
        n_ff=64, n_layers=n_layers, n_ctx=n_ctx, name=name, chat_template=CHATML_TEMPLATE,
    )  # fmt: skip
