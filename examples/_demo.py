"""Shared by the examples: real model strings from the environment, or tiny demo models.

Set RPRA_SMALL_MODEL and RPRA_LARGE_MODEL (e.g. ``gguf:/models/small.gguf`` and
``openai:gpt-4o-mini``) to run an example on real models. Without them, two tiny
llama.cpp models are synthesized in a temporary folder (no download): the small one
answers "I think it is Lyon." and predicts the grade ``bad`` for itself, the large one
answers "Paris is the capital of France.", so every example shows a deferral.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def model_strings() -> tuple[str, str]:
    """(small, large) model strings: the environment's, or synthesized demo GGUFs."""
    small, large = os.environ.get("RPRA_SMALL_MODEL"), os.environ.get("RPRA_LARGE_MODEL")
    if small and large:
        return small, large
    from rpra_agent.testing.gguf import write_scripted_gguf

    folder = Path(tempfile.mkdtemp(prefix="rpra-demo-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    print(f"[demo] RPRA_SMALL_MODEL/RPRA_LARGE_MODEL not set: synthesizing tiny GGUF models in {folder}")
    s = write_scripted_gguf(folder / "small.gguf", reply="I think it is Lyon.", grade="bad")
    big = write_scripted_gguf(folder / "large.gguf", reply="Paris is the capital of France.", grade="great")
    return f"gguf:{s}", f"gguf:{big}"


def show(decisions) -> None:
    """Print one line per decision."""
    for d in decisions:
        grade = d.prediction.grade if d.prediction else "-"
        print(f"decision step={d.step} kind={d.kind} route={d.route} reason={d.reason} predicted_grade={grade}")
