"""An append-only JSONL journal of predictions, so an interrupted live evaluation resumes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from rpra_agent.core.prediction import Prediction

__all__ = ["PredictionJournal"]

logger = logging.getLogger(__name__)


class PredictionJournal:
    """Predictions per ``(item id, predictor)``, persisted one JSON line each.

    A torn last line (the process died mid-write) is skipped with a warning; every
    complete line is kept. A second entry for the same key wins over the first.

    Args:
        path: The journal file (created on first write).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._entries: dict[tuple[str, str], Prediction | None] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    pred = obj.get("prediction")
                    self._entries[(str(obj["item"]), str(obj["predictor"]))] = (
                        Prediction.from_dict(pred) if pred else None
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    logger.warning("%s line %d is unreadable (%s); that prediction is redone", self.path, number, exc)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def get(self, item: str, predictor: str) -> Prediction | None:
        """The recorded prediction (``None`` when the predictor failed or none is recorded)."""
        return self._entries.get((item, predictor))

    def put(self, item: str, predictor: str, prediction: Prediction | None, *, error: str | None = None) -> None:
        """Record a prediction (or a failure as ``None``) and make it durable."""
        record: dict[str, Any] = {
            "item": item,
            "predictor": predictor,
            "prediction": prediction.to_dict() if prediction is not None else None,
        }
        if error:
            record["error"] = error
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
        self._entries[(item, predictor)] = prediction
