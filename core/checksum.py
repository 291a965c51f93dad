"""SHA-256 sidecars for shipped weight files (D1): ``<file>.sha256`` beside each, checked on load.

A weights file damaged in place (same size and format, flipped bits) loads fine and gives
plausible wrong numbers; its checksum does not match, and :func:`verify` says which file and how
to restore or regenerate it. The sidecar uses ``sha256sum``'s format (``<hex>  <name>``), so
``sha256sum -c tasks/tracr_weights/reverse.safetensors.sha256`` checks it by hand too.
``python scripts/checksum_weights.py`` (re)writes every sidecar, ``--check`` verifies them.

The expected digest of every *shipped* weight file is also kept in the package, in
``core/weights_manifest.json`` (path relative to the repository -> sha256), so deleting a
sidecar does not switch the check off: a shipped file is checked against the manifest (and
against its sidecar when there is one; the two must agree), and a shipped file in neither is
refused. Only weights outside the repository's shipped folders (compiled into a temporary folder
by tests and users) without a sidecar load unchecked.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SUFFIX = ".sha256"
WEIGHT_PATTERNS = ("*.safetensors",)
SHIPPED_ROOTS = ("tasks",)  # folders of the repository whose weight files are shipped
ROOT = Path(__file__).resolve().parents[1]  # the repository (package) root
MANIFEST = Path("core") / "weights_manifest.json"  # relative to a repository root
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


def read_manifest(root: str | Path = ROOT) -> dict[str, str]:
    """The shipped weight files' digests (``{relative path: sha256}``); {} without a manifest."""
    import json

    path = Path(root) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ChecksumError(f"{path} is damaged ({exc}); rewrite it: {REWRITE}") from None
    return {str(k): str(v).lower() for k, v in data.items()} if isinstance(data, dict) else {}


def write_manifest(files, root: str | Path) -> Path:
    """Record the digest of each of ``files`` (under ``root``) in ``root``'s manifest."""
    import json

    root = Path(root).resolve()
    digests = {str(Path(f).resolve().relative_to(root)): sha256_file(f) for f in files}
    out = root / MANIFEST
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(sorted(digests.items())), indent=1) + "\n")
    return out


def shipped_name(path: str | Path, root: str | Path = ROOT) -> str | None:
    """``path`` relative to ``root`` when it is a weight file of a shipped folder, else None."""
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return None
    return str(rel) if rel.parts and rel.parts[0] in SHIPPED_ROOTS else None


def expected_digest(path: str | Path, root: str | Path = ROOT) -> str | None:
    """The digest ``path`` must have: the manifest's (shipped files) and the sidecar's, which
    must agree; None for a file outside the shipped folders without a sidecar. ChecksumError
    for a shipped file with no digest recorded anywhere."""
    side = recorded(path)
    name = shipped_name(path, root)
    if name is None:
        return side
    listed = read_manifest(root).get(name)
    if listed is None and side is None:
        raise ChecksumError(
            f"weights file {path} is shipped but has no recorded checksum (not in {MANIFEST}, "
            f"no sidecar); restore it with `git checkout -- {path}` or record it: {REWRITE}"
        )
    if listed is not None and side is not None and listed != side:
        raise ChecksumError(
            f"{sidecar(path).name} ({side[:12]}...) and {MANIFEST} ({listed[:12]}...) disagree "
            f"on {path}; restore them with `git checkout`, or rewrite both: {REWRITE}"
        )
    return listed or side


def verify(path: str | Path, regenerate: str = "", root: str | Path = ROOT) -> None:
    """Raise :class:`ChecksumError` when ``path`` does not match its recorded digest (the
    package's manifest for a shipped file, else its sidecar; neither: no check).
    ``regenerate``: the command that rebuilds the file, named in the error; ``root``: the
    repository whose manifest applies."""
    path = Path(path)
    expected = expected_digest(path, root)
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
            f"the recorded one ({expected[:12]}...); {how}. If you changed it on purpose, "
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
