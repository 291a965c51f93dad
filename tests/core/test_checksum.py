"""D1: every shipped weight file has a checksum sidecar, checked on load; a file damaged in place
(same size and format, one mantissa bit flipped in every 8th float) is refused with an error that
names it and says how to restore it."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from core.checksum import ChecksumError, shipped_weights, verify

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "checksum_weights.py"


def _flip_mantissa_bits(path: Path) -> None:
    """Flip the lowest mantissa bit of every 8th float32 of a safetensors file's data."""
    raw = bytearray(path.read_bytes())
    (header_len,) = struct.unpack("<Q", raw[:8])
    start = 8 + header_len
    for i in range(start, len(raw) - 3, 32):
        raw[i] ^= 1
    path.write_bytes(bytes(raw))


def test_every_shipped_weight_file_has_a_matching_sidecar():
    files = shipped_weights(ROOT)
    assert len(files) >= 3  # tracr reverse, proportion; induction
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{len(files)} of {len(files)} weight files match" in proc.stdout


def test_damaged_tracr_weights_are_refused_naming_the_file(tmp_path):
    from models.tracr import load_state

    src = ROOT / "tasks" / "tracr_weights"
    for name in ("reverse.safetensors", "reverse.safetensors.sha256", "reverse.json"):
        shutil.copy(src / name, tmp_path / name)
    load_state("reverse", tmp_path)  # intact: loads
    damaged = tmp_path / "reverse.safetensors"
    size = damaged.stat().st_size
    _flip_mantissa_bits(damaged)
    assert damaged.stat().st_size == size
    with pytest.raises(ChecksumError) as err:
        load_state("reverse", tmp_path)
    message = str(err.value)
    assert str(damaged) in message
    assert f"git checkout -- {damaged}" in message
    assert "python scripts/compile_tracr.py reverse" in message


def test_truncated_induction_checkpoint_is_named(tmp_path):
    from tasks.induction import model

    for name in ("model.safetensors", "model.safetensors.sha256"):
        shutil.copy(model.CHECKPOINT.parent / name, tmp_path / name)
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-100])
    with pytest.raises(ChecksumError, match=f"weights file {ckpt} is damaged"):
        model.load(ckpt)


def test_check_script_reports_a_damaged_file(tmp_path):
    weights = tmp_path / "tasks" / "w"
    weights.mkdir(parents=True)
    f = weights / "x.safetensors"
    f.write_bytes(b"0123456789")
    assert subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)]).returncode == 0
    verify(f)
    f.write_bytes(b"0123456780")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and f"{f}: does not match" in proc.stderr
    with pytest.raises(ChecksumError):
        verify(f)


def _shipped_copy(tmp_path) -> Path:
    """A repository root holding one shipped weight file, its sidecar and the manifest."""
    from core.checksum import write_manifest, write_sidecar

    f = tmp_path / "tasks" / "w" / "x.safetensors"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"0123456789")
    write_sidecar(f)
    write_manifest([f], tmp_path)
    return f


def test_a_shipped_file_without_its_sidecar_is_still_checked(tmp_path):
    """Issue 20 item 12: the package's manifest keeps the digest when the sidecar is gone."""
    from core.checksum import sidecar

    f = _shipped_copy(tmp_path)
    sidecar(f).unlink()
    verify(f, root=tmp_path)  # intact: passes on the manifest's digest
    f.write_bytes(b"0123456780")
    with pytest.raises(ChecksumError, match=f"weights file {f} is damaged"):
        verify(f, root=tmp_path)


def test_a_shipped_file_with_no_digest_anywhere_is_refused(tmp_path):
    from core.checksum import MANIFEST, sidecar

    f = _shipped_copy(tmp_path)
    sidecar(f).unlink()
    (tmp_path / MANIFEST).write_text("{}")
    with pytest.raises(ChecksumError, match="has no recorded checksum"):
        verify(f, root=tmp_path)


def test_the_package_manifest_lists_every_shipped_weight_file():
    from core.checksum import read_manifest, sha256_file, shipped_name

    manifest = read_manifest(ROOT)
    for f in shipped_weights(ROOT):
        assert manifest[shipped_name(f, ROOT)] == sha256_file(f), f
