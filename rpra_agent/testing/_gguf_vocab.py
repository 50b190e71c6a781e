"""Vocabulary and reply segmentation for the synthesized GGUF models (see :mod:`rpra_agent.testing.gguf`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["CHATML_TEMPLATE", "GRADE_WORDS", "base_vocab", "escape", "scripted_pieces", "word_tokens"]

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
