"""Model-backed featurizers: the small model's own embeddings, or sentence-transformers.

- :class:`LlamaEmbeddingFeaturizer` embeds with a GGUF model through llama.cpp
  (``Llama(embedding=True)``, mean-pooled hidden states). Built from the small chat
  model (:meth:`LlamaEmbeddingFeaturizer.from_chat_model`), it is a linear probe on
  the small model's own representation of the request: the weights are
  memory-mapped, so the second llama.cpp context shares them with the chat model.
- :class:`SentenceTransformerFeaturizer` embeds with a sentence-transformers model
  when that package is installed (``pip install "rpra-agent[embeddings]"``).

Both standardise the embeddings with the training mean and spread, and in draft
mode concatenate the draft's embedding after the request's. Only the standardisation
arrays are saved; the model is found again at load time (recorded path or name, or a
``llama=`` / ``llama_model_path=`` / ``sentence_model=`` resource).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from rpra_agent.core.errors import ConfigError
from rpra_agent.predictors._blend import unit_rows
from rpra_agent.predictors._featurebase import FeatureMatrix, Sample, register_featurizer

__all__ = ["LlamaEmbeddingFeaturizer", "SentenceTransformerFeaturizer"]

logger = logging.getLogger(__name__)


class _EmbeddingFeaturizer:
    """Shared logic: embed request (and draft), standardise, persist the scaler."""

    kind = "embedding"
    blocking = True  # calls a model: the async predictor runs it in a thread
    MEMO_SIZE = 20_000
    """Texts whose unit vectors :meth:`vectors` keeps (about 30 MB at 384 dimensions)."""

    def __init__(self, *, max_chars: int = 2000) -> None:
        self.max_chars = int(max_chars)
        self.draft = False
        self._mean = np.zeros(0)
        self._scale = np.ones(0)
        self._fitted_on: tuple[Sequence[Sample], np.ndarray] | None = None
        self._memo: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding row per text."""
        raise NotImplementedError

    def _raw(self, samples: Sequence[Sample]) -> np.ndarray:
        parts = [self.embed([s.request[: self.max_chars] for s in samples])]
        if self.draft:
            parts.append(self.embed([(s.draft or "")[: self.max_chars] for s in samples]))
        return np.hstack(parts)

    def fit(self, samples: Sequence[Sample], *, draft: bool) -> None:
        """Embed the training samples and learn the standardisation."""
        self.draft = draft
        raw = self._raw(samples)
        self._mean = raw.mean(axis=0)
        spread = raw.std(axis=0)
        self._scale = np.where(spread > 1e-9, spread, 1.0)
        self._fitted_on = (samples, raw)  # the trainer transforms the same list next: embed it once

    def transform(self, samples: Sequence[Sample]) -> FeatureMatrix:
        """Standardised embeddings (request, then draft in draft mode)."""
        if self._mean.size == 0:
            raise ConfigError("the featurizer is not fitted: call fit() first")
        cached, self._fitted_on = self._fitted_on, None
        raw = cached[1] if cached is not None and cached[0] is samples else self._raw(samples)
        if raw.shape[1] != self._mean.shape[0]:
            raise ConfigError(
                f"the embedding model gives {raw.shape[1]} dimensions, the predictor was trained on "
                f"{self._mean.shape[0]}: load it with the model it was trained with"
            )
        return sparse.csr_matrix(np.clip((raw - self._mean) / self._scale, -10.0, 10.0))

    def vectors(self, samples: Sequence[Sample]) -> np.ndarray:
        """The requests' embeddings as unit vectors (no standardisation): what the neighbour member compares.

        Right after :meth:`fit` on the same list, the embeddings ``fit`` computed are
        reused; the vectors of up to :attr:`MEMO_SIZE` texts are kept, so the folds of
        a cross-fit (which meet the same requests again) embed each text once.
        """
        texts = [s.request[: self.max_chars] for s in samples]
        if not texts:
            return np.zeros((0, 0))
        cached = self._fitted_on
        if cached is not None and cached[0] is samples and not self.draft:
            self._fitted_on = None
            rows = unit_rows(cached[1])
        else:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
            fresh = dict(zip(missing, unit_rows(self.embed(missing)), strict=True)) if missing else {}
            rows = np.array([self._memo[t] if t in self._memo else fresh[t] for t in texts], dtype=np.float64)
        for text, row in zip(texts, rows, strict=True):
            if len(self._memo) >= self.MEMO_SIZE:
                break
            self._memo.setdefault(text, row.astype(np.float32))
        return rows

    def state(self) -> dict[str, np.ndarray]:
        """The standardisation arrays."""
        return {"mean": self._mean, "scale": self._scale}

    def _restore(self, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.draft = bool(config.get("draft", False))
        self._mean = np.asarray(arrays["mean"], dtype=float)
        self._scale = np.asarray(arrays["scale"], dtype=float)


@register_featurizer("llama_embedding")
class LlamaEmbeddingFeaturizer(_EmbeddingFeaturizer):
    """Mean-pooled llama.cpp embeddings of a GGUF model (a probe on the small model).

    Args:
        model_path: The GGUF file (e.g. the small model's).
        llama: An already loaded ``llama_cpp.Llama`` created with ``embedding=True``
            (then ``model_path`` is only recorded).
        n_ctx: Context of the embedding pass (longer texts are truncated).
        n_threads: CPU threads (``None``: llama.cpp's default).
        max_chars: Characters of each text that are embedded.

    Raises:
        ConfigError: when neither a path nor a model is given.
    """

    kind = "llama_embedding"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        llama: Any = None,
        n_ctx: int = 512,
        n_threads: int | None = None,
        max_chars: int = 2000,
    ) -> None:
        super().__init__(max_chars=max_chars)
        if model_path is None and llama is None:
            raise ConfigError("LlamaEmbeddingFeaturizer needs model_path= (a GGUF file) or llama= (a loaded Llama)")
        self.model_path = str(model_path) if model_path is not None else str(getattr(llama, "model_path", ""))
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self._llama = llama
        self._lock = threading.Lock()

    @classmethod
    def from_chat_model(cls, model: Any, **kwargs: Any) -> LlamaEmbeddingFeaturizer:
        """An embedding featurizer on the same GGUF file as a llama.cpp chat model (``gguf:`` models)."""
        path = getattr(model, "model_path", None)
        if not path:
            raise ConfigError("from_chat_model needs a llama.cpp chat model (load_chat_model('gguf:/path.gguf'))")
        return cls(path, **kwargs)

    def _model(self) -> Any:
        if self._llama is None:
            from rpra_agent.models.llamacpp import check_gguf, load_llama

            info = check_gguf(self.model_path)
            try:
                import llama_cpp
            except ImportError as exc:  # pragma: no cover - load_llama says the same
                raise ConfigError(
                    "llama.cpp embeddings need llama-cpp-python: pip install 'rpra-agent[llama]'"
                ) from exc
            params: dict[str, Any] = {
                "embedding": True,
                "n_ctx": self.n_ctx,
                "verbose": False,
                "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN,
            }
            if self.n_threads is not None:
                params["n_threads"] = self.n_threads
            self._llama = load_llama(info, params)
            logger.debug("llama embedding featurizer: loaded %s", info.path.name)
        return self._llama

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled embeddings, one row per text (empty texts embed a single space)."""
        llama = self._model()
        rows = []
        with self._lock:
            for text in texts:
                vec = np.asarray(llama.embed(text or " ", truncate=True), dtype=np.float64)
                rows.append(vec.mean(axis=0) if vec.ndim == 2 else vec)  # per-token output: pool it
        return np.vstack(rows)

    def config(self) -> dict[str, Any]:
        """The model path, its size, and the embedding settings."""
        path = Path(self.model_path)
        return {
            "kind": self.kind,
            "model_path": self.model_path,
            "model_bytes": path.stat().st_size if path.is_file() else None,
            "n_ctx": self.n_ctx,
            "max_chars": self.max_chars,
            "draft": self.draft,
        }

    @classmethod
    def from_state(
        cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **resources: Any
    ) -> LlamaEmbeddingFeaturizer:
        """Rebuild; ``llama=`` or ``llama_model_path=`` override the recorded model path."""
        path = resources.get("llama_model_path") or config.get("model_path")
        llama = resources.get("llama")
        if llama is None and (not path or not Path(str(path)).is_file()):
            raise ConfigError(
                f"the learned predictor embeds with the GGUF model {path!r}, which is not there: "
                "pass llama_model_path= (or llama=) when loading it"
            )
        size = config.get("model_bytes")
        if llama is None and size is not None and Path(str(path)).stat().st_size != size:
            logger.warning("%s differs in size from the model the predictor was trained with", path)
        self = cls(path, llama=llama, n_ctx=int(config.get("n_ctx", 512)), max_chars=int(config.get("max_chars", 2000)))
        self._restore(config, arrays)
        return self


@register_featurizer("sentence_transformer")
class SentenceTransformerFeaturizer(_EmbeddingFeaturizer):
    """sentence-transformers embeddings (optional: ``pip install "rpra-agent[embeddings]"``).

    Args:
        model_name: A model name or local directory.
        model: An already loaded ``SentenceTransformer`` (then ``model_name`` is recorded).
        device: Torch device.
        max_chars: Characters of each text that are embedded.
    """

    kind = "sentence_transformer"

    def __init__(
        self,
        model_name: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        model: Any = None,
        device: str = "cpu",
        max_chars: int = 2000,
    ) -> None:
        super().__init__(max_chars=max_chars)
        self.model_name = model_name
        self.device = device
        self._st = model

    def _model(self) -> Any:
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    'SentenceTransformerFeaturizer needs sentence-transformers: pip install "rpra-agent[embeddings]" '
                    "(install torch==2.13.0 first for the CPU build), or use the default TextFeaturizer"
                ) from exc
            try:
                self._st = SentenceTransformer(self.model_name, device=self.device)
            except Exception as exc:  # noqa: BLE001  (OSError, ValueError, HTTP errors: all say the same to a user)
                raise ConfigError(
                    f"cannot load the sentence-transformers model {self.model_name!r} ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); give a local model directory, or a model name already in the "
                    "Hugging Face cache (nothing is downloaded offline)"
                ) from None
        return self._st

    def check(self) -> None:
        """Load the model now (a bad name or directory is a :class:`ConfigError` before any work)."""
        self._model()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised sentence embeddings, one row per text."""
        out = self._model().encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float64).reshape(len(texts), -1)

    def config(self) -> dict[str, Any]:
        """The model name and settings."""
        return {"kind": self.kind, "model_name": self.model_name, "max_chars": self.max_chars, "draft": self.draft}

    @classmethod
    def from_state(
        cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], **resources: Any
    ) -> SentenceTransformerFeaturizer:
        """Rebuild; ``sentence_model=`` passes a loaded model."""
        self = cls(
            str(config.get("model_name")),
            model=resources.get("sentence_model"),
            max_chars=int(config.get("max_chars", 2000)),
        )
        self._restore(config, arrays)
        return self
