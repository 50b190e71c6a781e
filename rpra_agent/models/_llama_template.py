"""A model's chat template: rendering, template quirks, BOS/stop handling and forgery-safe tokenization.

The prompt sent to llama.cpp is exactly ``llama.tokenize(rendered, add_bos=..., special=True)``
of the rendered template, as llama.cpp itself would tokenize it (tokenizing message by
message would add a SentencePiece ``▁`` at every boundary). Message content cannot
forge special tokens: every CONTROL or USER_DEFINED token text in it (llama.cpp
matches USER_DEFINED tokens even with special tokens disabled) gets a zero-width
space after its first character before rendering, so it tokenizes as plain text, and
so does a token text that would straddle the edge of the content and the template.

Quirks handled:

- A template that drops (or rejects) the system role: system text, with the tools
  block, is folded into the first user turn.
- A template that rejects consecutive turns of one role: they are merged.
- No template: ChatML; when the vocabulary lacks ChatML's special tokens their text
  becomes stop strings, and BOS follows the vocabulary's ``add_bos`` flag.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from rpra_agent.core.errors import ConfigError
from rpra_agent.models._gguf_check import GGUFInfo

__all__ = ["CHATML_TEMPLATE", "ZWSP", "ChatTemplate"]

logger = logging.getLogger(__name__)

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ZWSP = "\u200b"
_MARK = "\ue000rpra-{}\ue001"


class ChatTemplate:
    """The chat template of a loaded model (see the module docstring).

    Args:
        llama: The ``llama_cpp.Llama``.
        info: The checked file's header facts.
        override: A template replacing the file's.
    """

    def __init__(self, llama: Any, info: GGUFInfo, override: str | None = None) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama = llama
        template = override or info.chat_template
        self.fallback = template is None
        model = llama._model
        eos, bos = llama.token_eos(), llama.token_bos()
        self.bos_text = model.token_get_text(bos) if bos >= 0 else ""
        eos_text = model.token_get_text(eos) if eos >= 0 else ""
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(model.vocab))
        self.stop: list[str] = []
        if template is None:
            template = CHATML_TEMPLATE
            if not self._is_special("<|im_start|>"):
                self.stop = ["<|im_end|>", "<|im_start|>"]
            logger.warning(
                "%s has no chat template; using ChatML%s (pass chat_template= to override)",
                info.path.name,
                " as plain text with stop strings" if self.stop else "",
            )
        self.formatter: Any = Jinja2ChatFormatter(
            template=template, eos_token=eos_text, bos_token=self.bos_text, add_generation_prompt=True
        )
        texts = info.special_texts
        self._pattern = re.compile("|".join(re.escape(t) for t in texts)) if texts else None
        self._longest = max((len(t) for t in texts), default=0)
        self.folds_system = self._drops_system()
        self.merges_turns = False

    def _is_special(self, text: str) -> bool:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)) == 1

    def _drops_system(self) -> bool:
        probe = [{"role": "system", "content": _MARK.format("s")}, {"role": "user", "content": _MARK.format("u")}]
        try:
            return _MARK.format("s") not in self.formatter(messages=probe).prompt
        except Exception:  # a template that raises on the system role
            return True

    # -- content -------------------------------------------------------------------
    def defang(self, text: str) -> str:
        """``text`` with every special-token text broken by a zero-width space (plain text to the tokenizer)."""
        if self._pattern is None or not text:
            return text
        for _ in range(8):
            if not self._pattern.search(text):
                break
            text = self._pattern.sub(lambda m: m.group()[0] + ZWSP + m.group()[1:], text)
        return text

    def prepare(self, dicts: list[dict[str, str]]) -> list[dict[str, str]]:
        """Apply the template's quirks: fold the system role into the first user turn where it is dropped."""
        if not self.folds_system:
            return dicts
        out: list[dict[str, str]] = []
        pending: list[str] = []
        for d in dicts:
            if d["role"] == "system":
                pending.append(d["content"])
            elif d["role"] == "user" and pending:
                out.append({"role": "user", "content": "\n\n".join([*pending, d["content"]])})
                pending = []
            else:
                out.append(d)
        if pending:
            out.append({"role": "user", "content": "\n\n".join(pending)})
        return out

    # -- rendering and tokens --------------------------------------------------------
    def render(self, dicts: list[dict[str, str]]) -> str:
        """The prompt text (with the generation prompt); merges same-role turns if the template demands it."""
        if self.merges_turns:
            dicts = _merge_turns(dicts)
        try:
            return str(self.formatter(messages=dicts).prompt)
        except Exception as exc:
            if self.merges_turns:
                raise ConfigError(f"the model's chat template cannot render this conversation: {exc}") from exc
            self.merges_turns = True
            return self.render(dicts)

    def _guard_edges(self, dicts: list[dict[str, str]]) -> list[dict[str, str]]:
        """Break special-token texts that would straddle a content edge and the template text around it."""
        if self._pattern is None:
            return dicts
        marks = [_MARK.format(i) for i in range(len(dicts))]
        prompt = self.render([{**d, "content": marks[i]} for i, d in enumerate(dicts)])
        out = [dict(d) for d in dicts]
        span = self._longest
        for i, mark in enumerate(marks):
            j = prompt.find(mark)
            if j < 0 or prompt.count(mark) != 1:
                continue  # the template rewrites content: nothing to align with
            before, after = prompt[max(0, j - span) : j], prompt[j + len(mark) : j + len(mark) + span]
            content = out[i]["content"]
            if content and self._straddles(before, content[:span], len(before)):
                content = ZWSP + content
            if content and self._straddles(content[-span:], after, len(content[-span:])):
                content = content + ZWSP
            out[i]["content"] = content
        return out

    def _straddles(self, left: str, right: str, edge: int) -> bool:
        if self._pattern is None:
            return False
        return any(m.start() < edge < m.end() for m in self._pattern.finditer(left + right))

    def tokens(self, dicts: list[dict[str, str]]) -> list[int]:
        """The prompt tokens: llama.cpp's tokenization of the rendered template (content already defanged)."""
        prompt = self.render(self._guard_edges(dicts))
        add_bos = self.add_bos and not (self.bos_text and prompt.startswith(self.bos_text))
        return list(self._llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))


def _merge_turns(dicts: list[dict[str, str]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for d in dicts:
        if out and out[-1]["role"] == d["role"]:
            out[-1] = {"role": d["role"], "content": f"{out[-1]['content']}\n\n{d['content']}"}
        else:
            out.append(dict(d))
    return out
