"""Turn a GGUF file into a Hugging Face checkpoint (safetensors) that vLLM can serve, offline.

vLLM's CPU build reads safetensors, not GGUF, and the only Qwen-family weights that install
offline are the ``cpu`` profile's Qwen2.5-Coder-0.5B-Instruct GGUF. transformers reads a GGUF
(dequantizing its Q4_K_M blocks), and ``save_pretrained`` writes the model and its tokenizer (with
the chat template stored in the GGUF) as a checkpoint. Runs inside the vLLM environment, which
has torch, transformers and gguf; the agent's own environment has none of them.

    python scripts/gguf_to_checkpoint.py MODEL.gguf OUT_DIR

Writes OUT_DIR/manifest.json: the source's sha256 and the sha256 of every file written, so a
second run that finds the same files does nothing, and a changed file is noticed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> dict[str, str]:
    return {
        p.name: sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST
    }


def up_to_date(source_sha: str, out: Path) -> bool:
    """Whether ``out`` holds an intact conversion of the GGUF with ``source_sha``."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return False
    recorded = json.loads(manifest.read_text())
    return bool(recorded.get("source_sha256") == source_sha and recorded["files"] == _files(out))


def convert(gguf: Path, out: Path, dtype_name: str) -> dict[str, object]:
    # Imported here: this module's helpers also run where torch is not installed.
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
        manifest: dict[str, object] = {
            "source": gguf.name,
            "source_sha256": sha256(gguf),
            "dtype": dtype_name,
            "transformers": __import__("transformers").__version__,
            "files": _files(work),
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(work, out)
        return manifest
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
    source_sha = sha256(args.gguf)
    if up_to_date(source_sha, args.out):
        print(f"checkpoint: {args.out} is already converted from {args.gguf.name}")
        return 0
    manifest = convert(args.gguf, args.out, args.dtype)
    took = time.monotonic() - started
    print(f"checkpoint: wrote {args.out} from {args.gguf.name} in {took:.0f} s")
    for name, digest in manifest["files"].items():  # type: ignore[attr-defined]
        print(f"  {digest}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
