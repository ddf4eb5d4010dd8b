"""Where model weights live on disk, and whether they are the bytes the catalog promises.

Layout: ``<root>/<model-id>/<file>``. A quick check compares sizes only (cheap enough for server
start-up); a full check hashes every byte. Full-hash results are remembered in
``<root>/.verified.json`` keyed by each file's size, mtime, ctime and inode, so an unchanged file
is not hashed twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from tqdm import tqdm

import models
from models.catalog import CATALOG, Catalog, Model, ModelFile

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "JETVOICE_MODELS_DIR"
CHUNK = 1 << 20
# Below this, hashing takes well under a second; a bar (shown after 1 s anyway) is pointless.
PROGRESS_MIN_BYTES = 50_000_000
VERIFIED_FILE = ".verified.json"

ProblemKind: TypeAlias = Literal["missing", "size", "sha256", "unpinned"]


def default_models_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$JETVOICE_MODELS_DIR`` when set, else ``models/weights`` next to this package."""
    environ = os.environ if env is None else env
    value = environ.get(ENV_MODELS_DIR, "").strip()
    if value:
        return Path(value).expanduser()
    return Path(models.__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Problem:
    """One file of one model that is not what the catalog says."""

    model_id: str
    file: str
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"{self.model_id}/{self.file}: {self.detail}"


class ModelUnavailableError(RuntimeError):
    """A model a service needs is missing or damaged; the message says how to fix it."""

    def __init__(self, model_id: str, reason: str, fix: str | None = None) -> None:
        self.model_id = model_id
        self.reason = reason
        self.fix = fix or CATALOG.pull_command(model_id)
        super().__init__(f"model {model_id} is unavailable: {reason}. Fix: run `{self.fix}`")


def sha256_file(path: Path, *, progress: bool = True, label: str | None = None) -> str:
    """Hex sha256 of ``path``, read in 1 MiB chunks; a progress bar for large files."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with (
        path.open("rb") as fh,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"verify {label or path.name}",
            disable=not progress or size < PROGRESS_MIN_BYTES,
            leave=False,
            delay=1.0,
        ) as bar,
    ):
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _stamp(st: os.stat_result) -> list[int]:
    # ctime and inode change on every rewrite or replacement, even one that restores the mtime.
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class ModelStore:
    """Model files under one root directory, checked against a catalog."""

    def __init__(self, root: Path, catalog: Catalog = CATALOG) -> None:
        self.root = Path(root)
        self.catalog = catalog

    @classmethod
    def default(cls, env: Mapping[str, str] | None = None) -> ModelStore:
        """A store at :func:`default_models_dir`."""
        return cls(default_models_dir(env))

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    def model(self, model_id: str) -> Model:
        """The catalog entry for ``model_id`` (ValueError listing known ids otherwise)."""
        return self.catalog.model(model_id)

    def path(self, model_id: str) -> Path:
        """The model's directory (which may not exist yet)."""
        self.model(model_id)
        return self.root / model_id

    def file(self, model_id: str, name: str) -> Path:
        """The path of one of the model's files (KeyError if the catalog lists no such file)."""
        return self.path(model_id) / self.model(model_id).file(name).name

    def entry(self, model_id: str) -> Path:
        """What a service opens: the model's entry file, or its directory when it has none."""
        model = self.model(model_id)
        return self.path(model_id) if model.entry is None else self.file(model_id, model.entry)

    # --- checking -----------------------------------------------------------------------------

    def check_file(
        self, model_id: str, spec: ModelFile, *, quick: bool = False, progress: bool = True
    ) -> Problem | None:
        """The problem with one file, or None when it is present and right."""
        path = self.root / model_id / spec.name
        try:
            st = path.stat()
        except FileNotFoundError:
            return Problem(model_id, spec.name, "missing", f"missing ({path})")
        if st.st_size != spec.size:
            return Problem(
                model_id,
                spec.name,
                "size",
                f"wrong size: {st.st_size:,} B, expected {spec.size:,} B ({path})",
            )
        if quick or self.is_verified(model_id, spec):
            return None
        actual = sha256_file(path, progress=progress, label=f"{model_id}/{spec.name}")
        if actual != spec.sha256:
            return Problem(
                model_id,
                spec.name,
                "sha256",
                f"wrong sha256: {actual}, expected {spec.sha256} ({path})",
            )
        self.record_verified(model_id, spec)
        return None

    def verify(self, model_id: str, *, quick: bool = False, progress: bool = True) -> list[Problem]:
        """Problems with the model's files: missing, wrong size, (unless quick) wrong sha256, or
        not pinned by the catalog at all (a hub file before `jetvoice models lock`)."""
        model = self.model(model_id)
        problems = []
        for spec in model.files:
            problem = self.check_file(model_id, spec, quick=quick, progress=progress)
            if problem is not None:
                problems.append(problem)
        fix = "pull it on a connected machine, then run `jetvoice models lock` and commit it"
        for pending in model.pending:
            where = "present" if (self.root / model_id / pending.name).exists() else "missing"
            problems.append(
                Problem(
                    model_id,
                    pending.name,
                    "unpinned",
                    f"{where}, but the catalog pins no size and sha256 for it "
                    f"(models/hub.lock.json has no entry): {fix}",
                )
            )
        if not model.resolved and model.listing is not None:
            problems.append(
                Problem(
                    model_id,
                    "*",
                    "unpinned",
                    f"file list of {model.listing.repo}@{model.listing.revision} not pinned yet "
                    f"(models/hub.lock.json has no entry): {fix}",
                )
            )
        return problems

    def require(self, model_id: str) -> Path:
        """The model's entry path after a quick check; ModelUnavailableError otherwise."""
        problems = self.verify(model_id, quick=True, progress=False)
        if problems:
            reasons = "; ".join(str(p) for p in problems)
            raise ModelUnavailableError(model_id, reasons, fix=self.catalog.pull_command(model_id))
        return self.entry(model_id)

    # --- the verified cache ---------------------------------------------------------------------

    def is_verified(self, model_id: str, spec: ModelFile) -> bool:
        """True when this exact file (same stamp) was already hashed and matched ``spec``."""
        path = self.root / model_id / spec.name
        try:
            stamp = _stamp(path.stat())
        except FileNotFoundError:
            return False
        entry = self._load_verified().get(f"{model_id}/{spec.name}")
        return (
            isinstance(entry, dict)
            and entry.get("sha256") == spec.sha256
            and entry.get("stamp") == stamp
        )

    def record_verified(self, model_id: str, spec: ModelFile) -> None:
        """Remember that the file on disk hashes to ``spec.sha256`` (call only after hashing it)."""
        path = self.root / model_id / spec.name
        cache = self._load_verified()
        cache[f"{model_id}/{spec.name}"] = {"sha256": spec.sha256, "stamp": _stamp(path.stat())}
        self._save_verified(cache)

    def _load_verified(self) -> dict[str, object]:
        try:
            data = json.loads((self.root / VERIFIED_FILE).read_text())
        except (OSError, ValueError):
            # A lost or damaged cache only costs a re-hash.
            return {}
        return data if isinstance(data, dict) else {}

    def _save_verified(self, cache: dict[str, object]) -> None:
        tmp: Path | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".verified.", suffix=".tmp")
            tmp = Path(name)
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the cache from other users
            with os.fdopen(fd, "w") as fh:
                json.dump(cache, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.root / VERIFIED_FILE)
        except OSError as exc:
            # A read-only store still verifies; it just hashes again next time.
            log.debug("cannot write %s: %s", self.root / VERIFIED_FILE, exc)
            if tmp is not None:
                tmp.unlink(missing_ok=True)
