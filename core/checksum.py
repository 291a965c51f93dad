"""SHA-256 sidecars for shipped weight files (D1): ``<file>.sha256`` beside each, checked on load.

A weights file damaged in place (same size and format, flipped bits) loads fine and gives
plausible wrong numbers; its checksum does not match, and :func:`verify` says which file and how
to restore or regenerate it. The sidecar uses ``sha256sum``'s format (``<hex>  <name>``), so
``sha256sum -c tasks/tracr_weights/reverse.safetensors.sha256`` checks it by hand too.
``python scripts/checksum_weights.py`` (re)writes every sidecar, ``--check`` verifies them.

A file without a sidecar loads unchecked (weights compiled into a temporary folder by tests and
users); that every *shipped* weight file has one is a test (tests/core/test_checksum.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SUFFIX = ".sha256"
WEIGHT_PATTERNS = ("*.safetensors",)
SHIPPED_ROOTS = ("tasks",)  # folders of the repository whose weight files are shipped
_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> digest checked


class ChecksumError(ValueError):
    """A weight file whose contents do not match its recorded checksum."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def cached_sha256(path: str | Path) -> str:
    """:func:`sha256_file`, computed once per (path, size, mtime) in this process."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_file(path)
    return _digests[key]


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def write_sidecar(path: str | Path) -> Path:
    path = Path(path)
    out = sidecar(path)
    out.write_text(f"{sha256_file(path)}  {path.name}\n")
    return out


def recorded(path: str | Path) -> str | None:
    """The digest recorded beside ``path``, or None without a sidecar."""
    side = sidecar(path)
    if not side.is_file():
        return None
    text = side.read_text().split()
    if not text or len(text[0]) != 64:
        raise ChecksumError(f"{side} is not a sha256 sidecar; rewrite it: {REWRITE}")
    return text[0].lower()


REWRITE = "python scripts/checksum_weights.py"


def verify(path: str | Path, regenerate: str = "") -> None:
    """Raise :class:`ChecksumError` when ``path`` does not match its sidecar (no sidecar: no
    check). ``regenerate``: the command that rebuilds the file, named in the error."""
    path = Path(path)
    expected = recorded(path)
    if expected is None:
        return
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if _verified.get(key) == expected:
        return
    actual = sha256_file(path)
    if actual != expected:
        how = f"restore it with `git checkout -- {path}`"
        if regenerate:
            how += f" or regenerate it with `{regenerate}`"
        raise ChecksumError(
            f"weights file {path} is damaged: its sha256 {actual[:12]}... does not match "
            f"{sidecar(path).name} ({expected[:12]}...); {how}. If you changed it on purpose, "
            f"record its new checksum with `{REWRITE}`."
        )
    _verified[key] = expected


def shipped_weights(root: str | Path) -> list[Path]:
    """Every weight file under the repository ``root``'s shipped folders, sorted."""
    root = Path(root)
    found = {
        p
        for folder in SHIPPED_ROOTS
        for pattern in WEIGHT_PATTERNS
        for p in (root / folder).rglob(pattern)
    }
    return sorted(found)
