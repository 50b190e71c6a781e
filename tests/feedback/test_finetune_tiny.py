"""A real LoRA fine-tuning run (TRL + PEFT) on a tiny randomly initialised Llama, on the CPU.

No download: the model is built from a LlamaConfig and the tokenizer is trained offline
on the export's own text. Runs in CI (the `finetune` extra is installed there) in ~10-20 s.
"""

import json
import os

import pytest

from rpra_agent.core.errors import ConfigError
from rpra_agent.core.verdict import Verdict
from rpra_agent.feedback import export_sft, finetune
from rpra_agent.feedback.finetune import load_sft_split
from rpra_agent.store import InMemoryDecisionStore
from tests.feedback.builders import decision

pytestmark = pytest.mark.slow

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _need_extra() -> None:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("the finetune extra must be installed in CI")
        pytest.skip("needs pip install 'rpra-agent[finetune]'")


def tiny_model(path, texts):
    """A 2-layer, 64-wide Llama and a byte-level BPE tokenizer trained on ``texts``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|pad|>", "<s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|im_end|>", bos_token="<s>")
    hf.chat_template = CHATML
    config = LlamaConfig(
        vocab_size=len(hf),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=hf.pad_token_id,
        bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    hf.save_pretrained(path)
    return path


def judged_store():
    store = InMemoryDecisionStore()
    for i in range(24):
        grade = ("great", "ok", "bad")[i % 3]
        d = decision(request=f"{grade} question number {i}?")  # the grade is learnable from the request
        store.add(d)
        store.add_verdicts([Verdict(d.id, grade, None, "paper3", "judge-m", "rpra-paper-1", "", "given")])
    return store


@pytest.fixture
def one_thread():
    """One torch thread: on a busy 2-core machine OpenMP spinning makes a tiny model 10x slower."""
    _need_extra()
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_lora_run_lowers_the_loss_and_saves_an_adapter(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    data = tmp_path / "sft"
    export_sft(judged_store(), data, val_fraction=0.25)
    rows = load_sft_split(data, "train")
    texts = [m["content"] for r in rows for m in r["prompt"] + r["completion"]] * 3
    base = tiny_model(tmp_path / "base", texts)
    result = finetune(
        data,
        base,
        tmp_path / "out",
        max_steps=12,
        learning_rate=1e-2,
        batch_size=6,
        lora_r=8,
        lora_alpha=16,
        cpu=True,
        checkpointing=False,
        merge=True,
    )
    assert result.steps == 12 and len(result.losses) == 12
    first, last = sum(result.losses[:3]) / 3, sum(result.losses[-3:]) / 3
    assert last < first, result.losses
    assert (result.adapter_dir / "adapter_config.json").exists()
    assert (result.adapter_dir / "adapter_model.safetensors").exists()
    assert json.loads((result.adapter_dir / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert result.merged_dir is not None and (result.merged_dir / "config.json").exists()
    assert result.eval_loss is not None and result.val_accuracy is not None and 0 <= result.val_accuracy <= 1
    summary = json.loads((tmp_path / "out" / "rpra_finetune.json").read_text())
    assert summary["steps"] == 12 and summary["losses"] == list(result.losses)

    from typer.testing import CliRunner

    from rpra_agent.cli import feedback  # noqa: F401  (registers the commands)
    from rpra_agent.cli.app import app

    args = ["finetune", "--data", str(data), "--base-model", str(base), "--out", str(tmp_path / "cli")]
    res = CliRunner().invoke(app, [*args, "--max-steps", "2", "--batch-size", "6", "--cpu", "--no-checkpointing"])
    assert res.exit_code == 0, res.output
    assert "2 steps, loss" in res.output and (tmp_path / "cli" / "adapter" / "adapter_config.json").exists()


def test_finetune_errors_are_clear(tmp_path):
    _need_extra()
    with pytest.raises(ConfigError, match="rpra export-sft"):
        finetune(tmp_path / "nothing", tmp_path, tmp_path / "out")
    bad = tmp_path / "bad" / "trl"
    bad.mkdir(parents=True)
    (bad / "train.jsonl").write_text('{"text": "no messages"}\n')
    with pytest.raises(ConfigError, match="line 1"):
        finetune(tmp_path / "bad", tmp_path, tmp_path / "out")


def test_missing_extra_names_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_trl(name, *args, **kwargs):
        if name == "trl":
            raise ImportError("No module named 'trl'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trl)
    with pytest.raises(ConfigError, match=r"pip install 'rpra-agent\[finetune\]'"):
        finetune("data", "base", "out")
