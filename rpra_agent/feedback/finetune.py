"""Hindsight fine-tuning: train a LoRA adapter on the exported grade-prediction set.

Needs the optional ``finetune`` extra (torch CPU/GPU, transformers, PEFT, TRL, datasets):
``pip install 'rpra-agent[finetune]'``. Heavy imports happen only inside :func:`finetune`.
The examples are trained in TRL's conversational prompt-completion form, so the loss is
on the grade only, never on the request.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpra_agent.core.errors import ConfigError

__all__ = ["FinetuneResult", "finetune", "load_sft_split"]

logger = logging.getLogger(__name__)

_EXTRA = "pip install 'rpra-agent[finetune]'"


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune` produced.

    Attributes:
        adapter_dir: Directory of the saved LoRA adapter (and tokenizer).
        merged_dir: Directory of the merged full model, when ``merge=True``.
        losses: Training loss at every logged step.
        steps: Optimiser steps taken.
        eval_loss: Validation loss at the end (``None`` without a validation set).
        val_accuracy: Share of validation examples whose most likely grade (first
            token, over the scale's labels) matches the judge's.
    """

    adapter_dir: Path
    merged_dir: Path | None
    losses: tuple[float, ...]
    steps: int
    eval_loss: float | None
    val_accuracy: float | None


def _require() -> None:
    missing = []
    for mod in ("torch", "transformers", "peft", "trl", "datasets"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise ConfigError(f"fine-tuning needs {', '.join(missing)}: {_EXTRA}")


def load_sft_split(data: str | Path, split: str) -> list[dict[str, Any]]:
    """Read ``<data>/trl/<split>.jsonl`` as prompt-completion rows (empty if absent)."""
    path = Path(data) / "trl" / f"{split}.jsonl"
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(
                f"{path}: line {i} is not a {{'messages': [...]}} record; re-run `rpra export-sft`"
            ) from None
        if not messages or messages[-1].get("role") != "assistant":
            raise ConfigError(f"{path}: line {i} does not end with the assistant's grade")
        rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
    return rows


def _labels(data: Path, rows: Sequence[dict[str, Any]]) -> list[str]:
    manifest = data / "manifest.json"
    if manifest.exists():
        return [str(x) for x in json.loads(manifest.read_text(encoding="utf-8")).get("labels", [])]
    return sorted({r["completion"][0]["content"] for r in rows})


def _grade_accuracy(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], labels: Sequence[str]) -> float | None:
    """First-token accuracy of the grade over the labels (``None`` if labels share a first token)."""
    import torch

    firsts = [tokenizer.encode(lab, add_special_tokens=False)[:1] for lab in labels]
    if not rows or any(not f for f in firsts) or len({f[0] for f in firsts}) != len(firsts):
        return None
    ids = [f[0] for f in firsts]
    hits = 0
    model.eval()
    with torch.no_grad():
        for row in rows:
            text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
            enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
            logits = model(**enc).logits[0, -1, ids]
            hits += labels[int(logits.argmax())] == row["completion"][0]["content"]
    return hits / len(rows)


def finetune(
    data: str | Path,
    base_model: str | Path,
    out: str | Path,
    *,
    epochs: float = 3.0,
    max_steps: int | None = None,
    learning_rate: float = 2e-4,
    batch_size: int = 8,
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.05,
    target_modules: str | Sequence[str] = "all-linear",
    max_length: int = 1024,
    seed: int = 0,
    merge: bool = False,
    cpu: bool = False,
    checkpointing: bool = True,
    progress: bool = False,
) -> FinetuneResult:
    """Train a LoRA adapter that predicts the judge's grade from the bare request.

    Args:
        data: Directory written by ``rpra export-sft`` (``trl/train.jsonl`` is read).
        base_model: A local Hugging Face model directory (or hub id already cached);
            its tokenizer needs a chat template.
        out: Output directory; the adapter goes to ``out/adapter``.
        epochs: Training epochs (ignored when ``max_steps`` is set).
        max_steps: Stop after this many optimiser steps.
        learning_rate: AdamW learning rate.
        batch_size: Examples per device and step.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling.
        lora_dropout: LoRA dropout.
        target_modules: Modules to adapt (PEFT's ``"all-linear"`` by default).
        max_length: Longest tokenised example kept.
        seed: Random seed.
        merge: Also save the base model with the adapter merged in (``out/merged``),
            ready for conversion to GGUF.
        cpu: Train on the CPU even when a GPU is present.
        checkpointing: Recompute activations in the backward pass (saves memory on
            real models; turn off for tiny ones).
        progress: Show the trainer's progress bar.

    Raises:
        ConfigError: without the ``finetune`` extra, training data or a chat template.
    """
    _require()
    data, out = Path(data), Path(out)
    train_rows = load_sft_split(data, "train")
    if not train_rows:
        raise ConfigError(f"no training examples in {data / 'trl' / 'train.jsonl'}: run `rpra export-sft` first")
    val_rows = load_sft_split(data, "validation")

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_model))
        model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype=torch.float32)
    except OSError as exc:
        raise ConfigError(
            f"cannot load base model {base_model!s}: {exc}; pass a local Hugging Face model directory"
        ) from None
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"the tokenizer of {base_model!s} has no chat template; use an instruct/chat model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with warnings.catch_warnings():
        # TRL still sets transformers' deprecated gradient_checkpointing flag: not ours to fix
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
        args = SFTConfig(
            output_dir=str(out / "trainer"),
            num_train_epochs=epochs,
            max_steps=max_steps if max_steps is not None else -1,
            learning_rate=learning_rate,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=seed,
            max_length=max_length,
            use_cpu=cpu,
            gradient_checkpointing=checkpointing,
            disable_tqdm=not progress,
            dataloader_num_workers=0,
        )
        peft_config = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        trainer.train()
    losses = tuple(float(h["loss"]) for h in trainer.state.log_history if "loss" in h)
    eval_loss = float(trainer.evaluate()["eval_loss"]) if val_rows else None
    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    accuracy = _grade_accuracy(trainer.model, tokenizer, val_rows, _labels(data, train_rows)) if val_rows else None
    merged_dir = None
    if merge:
        merged_dir = out / "merged"
        peft_model: Any = trainer.model
        peft_model.merge_and_unload().save_pretrained(str(merged_dir))
        tokenizer.save_pretrained(str(merged_dir))
    result = FinetuneResult(adapter_dir, merged_dir, losses, int(trainer.state.global_step), eval_loss, accuracy)
    summary = {
        "base_model": str(base_model),
        "data": str(data),
        "steps": result.steps,
        "losses": list(losses),
        "eval_loss": eval_loss,
        "val_accuracy": accuracy,
        "adapter_dir": str(adapter_dir),
        "merged_dir": str(merged_dir) if merged_dir else None,
    }
    (out / "rpra_finetune.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info("fine-tuned %d steps; adapter saved to %s", result.steps, adapter_dir)
    return result
