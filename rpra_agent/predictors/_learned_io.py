"""Saving and loading a learned predictor (a mixin of :class:`LearnedPredictor`): JSON + npz, no pickle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from rpra_agent.core.decision import utcnow
from rpra_agent.core.errors import ConfigError
from rpra_agent.core.grades import GradeScale
from rpra_agent.predictors._artifact import from_payload, read_artifact, to_payload, write_artifact
from rpra_agent.predictors._blend import Neighbours
from rpra_agent.predictors._featurebase import Featurizer
from rpra_agent.predictors._ordinal import OrdinalLogit
from rpra_agent.predictors.features import featurizer_from_state

if TYPE_CHECKING:
    from rpra_agent.store.base import Artifact, DecisionStore

__all__ = ["ARTIFACT_KIND", "Persistent"]

ARTIFACT_KIND = "learned_predictor"
"""The store artifact kind under which :meth:`LearnedPredictor.save_to_store` keeps versions."""


class Persistent:
    """Save/load methods; the attributes are the learned predictor's."""

    name: str
    mode: Any
    target: Any
    scale: GradeScale
    data_scale: GradeScale
    featurizer: Featurizer
    model: OrdinalLogit
    training: dict[str, Any]
    metrics: dict[str, Any]
    fitted: bool
    neighbours: Featurizer | None
    knn: Any
    _version: str

    def __init__(self, featurizer: Featurizer | None = None, **kwargs: Any) -> None:  # pragma: no cover
        raise NotImplementedError("LearnedPredictor defines the constructor")

    @property
    def version(self) -> str:
        """``learned-<mode>[-<target>]-<hash>`` of the training data and configuration (no suffix for ``small``)."""
        return self._version

    @property
    def needs_draft(self) -> bool:
        """Draft mode: it predicts from the small model's drafted answer (the graph's ``verify`` paradigm)."""
        return bool(getattr(self, "mode", "request") == "draft")

    # -- persistence -----------------------------------------------------------
    def _fingerprint(self) -> str:
        blob = json.dumps(
            {
                "f": self.featurizer.config(),
                "m": self.model.config(),
                "d": self.training.get("data_sha256"),
                **({"b": self.training["blend"]} if self.training.get("blend", {}).get("used") else {}),
                **({"n": self.neighbours.config()} if self.knn is not None and self.neighbours is not None else {}),
            },
            sort_keys=True,
        )
        target = f"-{self.target}" if self.target != "small" else ""
        return f"learned-{self.mode}{target}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"

    def _manifest(self) -> dict[str, Any]:
        from rpra_agent import __version__

        return {
            "name": self.name,
            "version": self.version,
            "mode": self.mode,
            "target": self.target,
            "scale": self.scale.to_dict(),
            "featurizer": self.featurizer.config(),
            "classifier": self.model.config(),
            "training": self.training,
            "metrics": self.metrics,
            **({"neighbours": self._neighbours_manifest()} if self.knn is not None else {}),
            "rpra_agent": __version__,
            "saved_at": utcnow(),
        }

    def _neighbours_manifest(self) -> dict[str, Any]:
        if self.neighbours is None:  # pragma: no cover - fit and load set both or neither
            raise ConfigError("the neighbour member has no embedding model to save")
        return {"featurizer": self.neighbours.config(), **self.knn.record()}

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"featurizer/{k}": v for k, v in self.featurizer.state().items()}
        arrays.update({f"classifier/{k}": v for k, v in self.model.state().items()})
        if self.knn is not None and self.neighbours is not None:
            arrays.update({f"neighbours/featurizer/{k}": v for k, v in self.neighbours.state().items()})
            arrays["neighbours/vectors"] = self.knn.vectors
            arrays["neighbours/targets"] = self.knn.targets
        return arrays

    def save(self, path: str | Path) -> Path:
        """Save to the directory ``path`` (``manifest.json`` + ``arrays.npz``; no pickle)."""
        if not self.fitted:
            raise ConfigError("train the learned predictor before saving it")
        return write_artifact(path, self._manifest(), self._arrays())

    def save_to_store(self, store: DecisionStore, name: str = "default") -> Artifact:
        """Store a new version as a ``learned_predictor`` artifact named ``name``."""
        if not self.fitted:
            raise ConfigError("train the learned predictor before saving it")
        return store.put_artifact(ARTIFACT_KIND, name, to_payload(self._manifest(), self._arrays()))

    @classmethod
    def load(cls, path: str | Path, **resources: Any) -> Self:
        """Load a predictor saved with :meth:`save` (safe: JSON and ``allow_pickle=False`` arrays).

        Args:
            path: The artifact directory.
            **resources: For model-backed featurizers, e.g. ``llama=`` a loaded
                ``llama_cpp.Llama`` (embedding mode) or ``llama_model_path=``.

        Raises:
            ConfigError: on a missing, corrupt, modified or incompatible artifact, or
                when the embedding model of its neighbour member cannot be loaded.
        """
        manifest, arrays = read_artifact(path)
        return cls._from_parts(manifest, arrays, resources)

    @classmethod
    def load_from_store(cls, store: DecisionStore, name: str = "default", **resources: Any) -> Self:
        """Load the newest ``learned_predictor`` artifact ``name`` from a store.

        Raises:
            ConfigError: when there is none, or it is corrupt or incompatible.
        """
        artifact = store.latest_artifact(ARTIFACT_KIND, name)
        if artifact is None:
            raise ConfigError(f"the store has no {ARTIFACT_KIND} artifact named {name!r}: run `rpra train-predictor`")
        manifest, arrays = from_payload(artifact.payload, f"store artifact {ARTIFACT_KIND}/{name} v{artifact.version}")
        return cls._from_parts(manifest, arrays, resources)

    @classmethod
    def _from_parts(
        cls, manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], resources: Mapping[str, Any]
    ) -> Self:
        def sub(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        try:
            scale = GradeScale.from_dict(manifest["scale"])
            featurizer = featurizer_from_state(manifest["featurizer"], sub("featurizer/"), **resources)
            model = OrdinalLogit.from_state(manifest["classifier"], sub("classifier/"))
            mode = manifest["mode"]
            target = manifest.get("target", "small")
            knn = manifest.get("neighbours")
            neighbours = (
                None
                if knn is None
                else featurizer_from_state(knn["featurizer"], sub("neighbours/featurizer/"), **resources)
            )
            if knn is not None:
                member = Neighbours(
                    arrays["neighbours/vectors"], arrays["neighbours/targets"], knn["k"], knn["scale"], knn["center"]
                )
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise ConfigError(f"the learned-predictor artifact is incomplete or malformed ({exc!r})") from None
        if model.n_labels != len(scale.labels):
            raise ConfigError("the artifact's classifier and grade scale disagree on the number of grades")
        self = cls(featurizer, mode=mode, target=target, name=str(manifest.get("name") or "") or None)
        self.scale = scale  # the prediction's scale (the judge's, its margin, or no_worse)
        self.data_scale = GradeScale.from_dict(
            dict(manifest.get("training") or {}).get("data_scale") or manifest["scale"]
        )
        self.model = model
        if neighbours is not None:
            check = getattr(neighbours, "check", None)
            if callable(check):  # the embedding model is needed for every prediction: a missing one fails here
                check()
            self.neighbours, self.knn = neighbours, member
        self.training = dict(manifest.get("training") or {})
        self.metrics = dict(manifest.get("metrics") or {})
        self.fitted = True
        self._version = str(manifest.get("version") or self._fingerprint())
        return self
