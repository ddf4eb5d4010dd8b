"""What a benchmark ran on: device, CPU, models (ids and sha256) and package versions.

Printed at the top of the table and stored in the JSON, so two figures are only compared when
they came from the same machine, models and versions.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from models.catalog import Catalog
from models.paths import ProfilePaths

# Distribution names of the packages whose versions move the numbers.
VERSIONED_PACKAGES = (
    ("pipecat", "pipecat-ai"),
    ("onnxruntime", "onnxruntime"),
    ("ctranslate2", "ctranslate2"),
    ("faster_whisper", "faster-whisper"),
    ("llama_cpp", "llama_cpp_python"),
    ("kokoro_onnx", "kokoro-onnx"),
    ("aiortc", "aiortc"),
    ("numpy", "numpy"),
)
_JETSON_MODEL = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class ModelIdentity:
    """One model of the profile: its role, catalog id and the sha256 of the file it loads."""

    role: str
    id: str
    sha256: str

    @property
    def short(self) -> str:
        """``id (sha-prefix)`` for the table header."""
        return f"{self.id} ({self.sha256[:8]})"


@dataclass(frozen=True)
class Environment:
    """Device, CPU, models and versions of one benchmark run."""

    profile: str
    device: str
    cpu: str
    cores: int
    machine: str
    system: str
    board: str | None
    python: str
    packages: dict[str, str]
    models: tuple[ModelIdentity, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        data = asdict(self)
        data["models"] = [asdict(m) for m in self.models]
        return data

    def header_lines(self) -> list[str]:
        """The lines printed above the table."""
        board = f", board {self.board}" if self.board else ""
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        versions = ", ".join(f"{k} {v}" for k, v in self.packages.items())
        return [
            f"device: {self.device} (profile {self.profile}), {self.cpu}, {self.cores} cores, "
            f"{self.machine}{board}; {self.system}",
            f"load average now: {load}",
            "models: " + ", ".join(m.short for m in self.models),
            f"versions: python {self.python}, {versions}",
        ]


def model_sha256(catalog: Catalog, model_id: str) -> str:
    """The catalog's sha256 of the file a service opens (the entry, else ``model.bin``).

    The catalog's digest is what ``jetvoice models pull`` verified, so nothing is re-hashed.
    """
    model = catalog.model(model_id)
    names = [f.name for f in model.files]
    name = model.entry or ("model.bin" if "model.bin" in names else names[0])
    return model.file(name).sha256


def cpu_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def collect_environment(paths: ProfilePaths, catalog: Catalog) -> Environment:
    """Describe this machine and the profile's models."""
    board = None
    if _JETSON_MODEL.exists():
        board = _JETSON_MODEL.read_text(errors="replace").strip("\x00\n ") or None
    roles = (
        ("stt", paths.stt_model),
        ("llm", paths.llm_model),
        ("tts", paths.tts_model),
        ("voices", paths.voices_model),
    )
    return Environment(
        profile=paths.profile,
        device=paths.device,
        cpu=cpu_name(),
        cores=os.cpu_count() or 0,
        machine=platform.machine(),
        system=platform.platform(terse=True),
        board=board,
        python=platform.python_version(),
        packages={label: _version(dist) for label, dist in VERSIONED_PACKAGES},
        models=tuple(ModelIdentity(role, mid, model_sha256(catalog, mid)) for role, mid in roles),
    )
