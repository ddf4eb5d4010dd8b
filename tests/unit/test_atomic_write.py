"""The one temp-file, sha256, rename step under assembled, unpacked and downloaded model files."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from models.atomic_write import Written, atomic_write, install_file

DATA = b"weights" * 1000


def _reject(written: Written) -> None:
    raise ValueError(f"rejected {written.sha256}")


def test_a_checked_file_is_renamed_into_place_readable_by_others(tmp_path: Path) -> None:
    dest = tmp_path / "m" / "model.bin"
    seen: list[Written] = []
    with atomic_write(dest, check=seen.append) as out:
        out.write(DATA)
    assert dest.read_bytes() == DATA
    assert seen[0].sha256 == hashlib.sha256(DATA).hexdigest() and seen[0].size == len(DATA)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert list(dest.parent.iterdir()) == [dest]


def test_a_rejected_or_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old")
    with pytest.raises(ValueError, match="rejected"), atomic_write(dest, check=_reject) as out:
        out.write(DATA)
    with pytest.raises(RuntimeError), atomic_write(dest) as out:
        out.write(DATA)
        raise RuntimeError("the source broke")
    assert dest.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [dest]


def test_install_file_renames_a_download_or_deletes_it_when_rejected(tmp_path: Path) -> None:
    tmp, dest = tmp_path / ".model.bin.download", tmp_path / "model.bin"
    tmp.write_bytes(DATA)
    with pytest.raises(ValueError, match="rejected"):
        install_file(tmp, dest, check=_reject, progress=False)
    assert not tmp.exists() and not dest.exists()
    tmp.write_bytes(DATA)
    written = install_file(tmp, dest, check=lambda w: None, progress=False)
    assert written.sha256 == hashlib.sha256(DATA).hexdigest()
    assert dest.read_bytes() == DATA and not tmp.exists()
