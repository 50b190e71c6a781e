"""A LangChain chat model over an in-process ``llama_cpp.Llama`` (no langchain-community).

It supports invoke/stream/async, ``bind_tools`` (auto, required and forced choice,
through a GBNF grammar), ``with_structured_output`` (a forced tool call), OpenAI-format
logprobs as plain floats, usage metadata with the reused KV-cache prefix, and
:meth:`ChatLlamaCpp.grade_distribution`, which reads a grade distribution from one
forward pass. A lock serialises every use of the (not thread-safe) ``Llama`` object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from rpra_agent.core.errors import ConfigError
from rpra_agent.models._gguf_check import GGUFInfo, check_gguf, default_n_ctx, load_llama
from rpra_agent.models._llama_grades import LabelSequences
from rpra_agent.models._llama_grading import GradeReaderMixin
from rpra_agent.models._llama_grammar import llama_accepts, tool_grammar
from rpra_agent.models._llama_messages import build_message, collect, outcome_stats, stream_chunks
from rpra_agent.models._llama_prompt import normalize_tool_choice, to_chat_dicts
from rpra_agent.models._llama_run import (
    ContextOverflowError,
    Delta,
    Outcome,
    Sampling,
    stream_tokens,
)
from rpra_agent.models._llama_template import ChatTemplate

__all__ = ["ChatLlamaCpp", "ContextOverflowError", "check_gguf", "default_n_ctx", "load_llama"]


logger = logging.getLogger(__name__)

_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty")
_IGNORED = {"ls_structured_output_format", "parallel_tool_calls", "strict"}
_CALL_KWARGS = {"tools", "tool_choice", "logprobs", "top_logprobs", "max_tokens", "seed", "grammar", *_SAMPLING}


class ChatLlamaCpp(GradeReaderMixin, BaseChatModel):
    """A chat model running a GGUF file in-process with llama.cpp.

    The file is validated (exists, GGUF magic, readable header, unique token
    strings) before llama.cpp opens it, because a malformed GGUF aborts the process.

    Args:
        model_path: Path of the ``.gguf`` file.
        n_ctx: Context size in tokens (``None``: the model's trained context,
            capped so the KV cache fits ``kv_cache_mb``).
        kv_cache_mb: Memory budget of the KV cache when ``n_ctx`` is not given.
        n_threads: CPU threads for generation (``None``: llama.cpp's default).
        n_threads_batch: CPU threads for prompt evaluation (``None``: ``n_threads``
            if set, else llama.cpp's default, all cores).
        n_batch: Prompt batch size.
        n_gpu_layers: Layers to offload to a GPU.
        seed: Sampler seed (``None``: a fresh random seed per call).
        logits_all: Keep logits for every position (not needed for logprobs here).
        temperature: Sampling temperature (0 is greedy).
        top_p: Nucleus sampling.
        top_k: Top-k sampling.
        min_p: Min-p sampling.
        repeat_penalty: Repetition penalty (1.0 disables it).
        max_tokens: Cap on generated tokens (``None``: until the context is full).
        stop: Stop strings.
        logprobs: Return OpenAI-format logprobs in ``response_metadata["logprobs"]``.
        top_logprobs: Alternatives per token in the logprobs.
        chat_template: A Jinja chat template overriding the file's (ChatML, with
            stop strings and the vocabulary's BOS, if the file has none).
        model_kwargs: Extra keyword arguments for ``llama_cpp.Llama``.
        verbose: Let llama.cpp log to stderr.

    Raises:
        ConfigError: On a missing, unreadable or corrupt file, or a missing backend.
        ContextOverflowError: At call time, when a prompt does not fit ``n_ctx``.
    """

    model_path: str
    n_ctx: int | None = None
    kv_cache_mb: float = 1024.0
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_batch: int = 512
    n_gpu_layers: int = 0
    seed: int | None = None
    logits_all: bool = False
    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: int | None = 512
    stop: list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    chat_template: str | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    verbose: bool = False
    rpra_name: str = ""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _llama: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _template: ChatTemplate | None = PrivateAttr(default=None)
    _info: GGUFInfo | None = PrivateAttr(default=None)
    _grade_seqs: dict[tuple[tuple[str, ...], str], LabelSequences] = PrivateAttr(default_factory=dict)
    _stats: dict[str, Any] = PrivateAttr(default_factory=dict)
    _prefills: dict[str, list[int]] = PrivateAttr(default_factory=dict)
    _grammars: dict[str, bool] = PrivateAttr(default_factory=dict)
    _last_prompt: tuple[Any, list[int]] | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._load()  # outside pydantic's validation so ConfigError is not wrapped

    def _load(self) -> None:
        if self.n_ctx is not None and self.n_ctx < 16:
            raise ConfigError(f"n_ctx must be at least 16, got {self.n_ctx}")
        if not self.kv_cache_mb > 0:
            raise ConfigError(f"kv_cache_mb must be positive, got {self.kv_cache_mb}")
        info = check_gguf(self.model_path)
        if self.n_ctx is None:
            self.n_ctx = default_n_ctx(info, self.kv_cache_mb)
        params: dict[str, Any] = {
            "n_ctx": self.n_ctx, "n_batch": self.n_batch, "n_gpu_layers": self.n_gpu_layers,
            "logits_all": self.logits_all, "verbose": self.verbose, **self.model_kwargs,
        }  # fmt: skip
        if self.n_threads is not None:
            params["n_threads"] = self.n_threads
        if self.n_threads_batch is not None or self.n_threads is not None:
            params["n_threads_batch"] = self.n_threads_batch or self.n_threads
        if self.seed is not None:
            params["seed"] = self.seed
        self._llama = load_llama(info, params)
        self._info = info
        self._template = ChatTemplate(self._llama, info, self.chat_template)
        if not self.rpra_name:
            self.rpra_name = f"gguf:{info.path.name}"

    # -- LangChain plumbing ------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "rpra-llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (hold :attr:`lock` while using it)."""
        return self._llama

    @property
    def lock(self) -> Any:
        """The lock that serialises every use of :attr:`llama`."""
        return self._lock

    @property
    def last_stats(self) -> dict[str, Any]:
        """Token counts and llama.cpp timings of the last call (generation or grade pass)."""
        return dict(self._stats)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; ``tool_choice`` is ``auto`` (default), ``none``, ``any``/``required`` or a tool name.

        The model sees the tools in its system prompt and a grammar built from their
        JSON schemas makes every call well-formed.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        choice = normalize_tool_choice(tool_choice, formatted)
        return self.bind(tools=formatted, tool_choice=choice, **kwargs)

    # -- prompts -----------------------------------------------------------------
    def prompt_tokens(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None = None
    ) -> list[int]:
        """The prompt tokens for ``messages`` under the model's chat template (with the generation prompt).

        ``messages`` may also be anything ``invoke`` accepts (a string, tuples).
        """
        if isinstance(messages, str) or not all(isinstance(m, BaseMessage) for m in messages):
            messages = self._convert_input(messages).to_messages()  # type: ignore[arg-type]
        template = self._template
        if template is None:  # pragma: no cover - set by __init__
            raise ConfigError("the model is not loaded")
        dicts = template.prepare(to_chat_dicts(messages, tools, defang=template.defang))
        key = (tuple((d["role"], d["content"]) for d in dicts), self.chat_template)
        last = self._last_prompt  # predict then answer: tokenize the shared prompt once
        if last is None or last[0] != key:
            last = self._last_prompt = (key, template.tokens(dicts))
        return list(last[1])

    def get_num_tokens(self, text: str) -> int:
        """Exact token count with the model's own tokenizer (offline)."""
        with self._lock:
            return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def get_num_tokens_from_messages(self, messages: list[BaseMessage], tools: Sequence[Any] | None = None) -> int:
        """Exact prompt size of ``messages`` under the chat template."""
        with self._lock:
            return len(self.prompt_tokens(messages, [convert_to_openai_tool(t) for t in tools] if tools else None))

    # -- generation --------------------------------------------------------------
    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - _CALL_KWARGS - _IGNORED
        if unknown:
            raise ConfigError(
                f"unsupported llama.cpp call options {sorted(unknown)}; supported: {sorted(_CALL_KWARGS)}"
            )
        opts = {
            k: kwargs.get(k, getattr(self, k)) for k in (*_SAMPLING, "max_tokens", "seed", "logprobs", "top_logprobs")
        }
        opts["stop"] = list(stop if stop is not None else self.stop or [])
        if self._template is not None:
            opts["stop"] += [s for s in self._template.stop if s not in opts["stop"]]
        opts["tools"] = kwargs.get("tools") or None
        opts["tool_choice"] = kwargs.get("tool_choice") or ("auto" if opts["tools"] else "none")
        opts["grammar"] = kwargs.get("grammar")
        return opts

    def _run(self, messages: list[BaseMessage], opts: dict[str, Any]) -> Generator[Delta, None, Outcome]:
        tools, choice = opts["tools"], opts["tool_choice"]
        k = opts["top_logprobs"] if opts["top_logprobs"] is not None else 0
        with self._lock:
            grammar = opts["grammar"] or (tool_grammar(tools, choice, self._accepts) if tools else None)
            if opts["grammar"] and not self._accepts(opts["grammar"]):
                raise ConfigError("llama.cpp's grammar parser refuses the grammar passed in grammar=; check its GBNF")
            prompt = self.prompt_tokens(messages, tools)
            outcome = yield from stream_tokens(
                self._llama,
                prompt,
                sampling=Sampling(**{key: opts[key] for key in _SAMPLING}),
                grammar=grammar,
                lazy_grammar=bool(tools) and choice == "auto" and not opts["grammar"],
                max_tokens=opts["max_tokens"],
                stop=opts["stop"],
                top_logprobs=k if opts["logprobs"] else None,
                seed=opts["seed"],
            )
            self._stats = {"kind": "generate", **outcome_stats(outcome)}
        logger.debug("llama.cpp generate %s", self._stats)
        return outcome

    def _accepts(self, grammar: str) -> bool:
        if grammar not in self._grammars:
            if len(self._grammars) > 64:
                self._grammars.clear()
            self._grammars[grammar] = llama_accepts(self._llama, grammar)
        return self._grammars[grammar]

    def _finish(self, text: str, entries: list[dict[str, Any]], outcome: Outcome, opts: dict[str, Any]) -> AIMessage:
        return build_message(
            text, entries, outcome, tools=bool(opts["tools"]), logprobs=bool(opts["logprobs"]), name=self.rpra_name
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        opts = self._options(stop, kwargs)
        text, entries, outcome = collect(self._run(messages, opts))
        return ChatResult(generations=[ChatGeneration(message=self._finish(text, entries, outcome, opts))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        opts = self._options(stop, kwargs)
        mode = {"auto": "tools", "none": "text"}.get(opts["tool_choice"], "buffer") if opts["tools"] else "text"
        for chunk in stream_chunks(
            self._run(messages, opts),
            mode=mode,
            logprobs=bool(opts["logprobs"]),
            finish=lambda t, e, o: self._finish(t, e, o, opts),
        ):
            if run_manager and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
