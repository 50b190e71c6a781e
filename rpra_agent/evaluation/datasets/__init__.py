"""Stage 1, the data: the dataset format, the bundled recordings, converting your own tables.

- :mod:`.records`: :class:`EvalDataset` and its items, :func:`load_dataset`, :func:`save_dataset`.
- :mod:`.convert`: CSV/TSV/JSONL tables (wide or long) into datasets (``rpra data convert``).
- :mod:`.scales`: the grade scale of a recording (0/1, integer or continuous scores).
- :mod:`.prompts`: prompts files for live evaluation.
"""

from rpra_agent.evaluation.datasets.records import (
    BUNDLED,
    FORMAT_VERSION,
    EvalDataset,
    EvalItem,
    ModelResponse,
    bundled_path,
    load_dataset,
    render_messages,
    save_dataset,
)
from rpra_agent.evaluation.datasets.scales import binary_scale, continuous_scale, scale_for

__all__ = [
    "BUNDLED",
    "FORMAT_VERSION",
    "EvalDataset",
    "EvalItem",
    "ModelResponse",
    "binary_scale",
    "bundled_path",
    "continuous_scale",
    "load_dataset",
    "render_messages",
    "save_dataset",
    "scale_for",
]
