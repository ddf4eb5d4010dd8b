"""Turn a GGUF file into a Hugging Face checkpoint (safetensors) that vLLM can serve, offline.

vLLM's CPU build reads safetensors, not GGUF, and the only Qwen-family weights that install
offline are the ``cpu`` profile's Qwen2.5-Coder-0.5B-Instruct GGUF. transformers reads a GGUF
(dequantizing its Q4_K_M blocks), and ``save_pretrained`` writes the model and its tokenizer (with
the chat template stored in the GGUF) as a checkpoint. Runs inside the vLLM environment, which
has torch, transformers and gguf; the agent's own environment has none of them.

    python scripts/gguf_to_checkpoint.py MODEL.gguf OUT_DIR

Only the conversion: whether it is needed, and the sha256 of what it wrote, are decided and kept
by its caller (scripts/vllm_cpu.py), which has the model catalog's pins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def convert(gguf: Path, out: Path, dtype_name: str) -> None:
    """Write the checkpoint of ``gguf`` to ``out``, replacing whatever was there."""
    # Imported here: `--help` works without torch.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    dtype = getattr(torch, dtype_name)
    # Into a sibling temporary directory, renamed at the end: an interrupted run leaves no
    # half-written checkpoint that vLLM would try to load.
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        # Unpacked into plain dense tensors: transformers keeps a GGUF model's weights in its
        # quantized blocks otherwise, and refuses to save those.
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        config = loaded.config
        # A checkpoint of plain weights: vLLM would otherwise look for GGUF blocks in it.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        model.load_state_dict(loaded.state_dict())
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        if not tokenizer.chat_template:
            raise SystemExit(f"{gguf} carries no chat template: vLLM could not build prompts")
        model.save_pretrained(str(work))
        tokenizer.save_pretrained(str(work))
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=("bfloat16", "float32"),
        help="dtype of the written weights (default: bfloat16, what vLLM's CPU build runs)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    convert(args.gguf, args.out, args.dtype)
    took = time.monotonic() - started
    print(f"checkpoint: wrote {args.out} ({args.dtype}) from {args.gguf.name} in {took:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
