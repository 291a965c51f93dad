"""Write or check the ``.sha256`` sidecar of every shipped weight file and the package's
manifest of their digests, core/weights_manifest.json (core.checksum).

    python scripts/checksum_weights.py           # (re)write every sidecar and the manifest
    python scripts/checksum_weights.py --check   # verify; exit 1 naming each bad or missing one

Run it after adding or regenerating a weight file (tasks/**/*.safetensors).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.checksum import (  # noqa: E402
    ChecksumError,
    read_manifest,
    recorded,
    sha256_file,
    shipped_name,
    shipped_weights,
    write_manifest,
    write_sidecar,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="verify instead of writing")
    p.add_argument("--root", default=str(ROOT), help="repository root (default: this one)")
    args = p.parse_args(argv)
    files = shipped_weights(args.root)
    if not files:
        print(f"error: no weight files under {args.root}", file=sys.stderr)
        return 2
    if not args.check:
        for f in files:
            print(f"wrote {write_sidecar(f)}")
        print(f"wrote {write_manifest(files, args.root)}")
        return 0
    bad = []
    manifest = read_manifest(args.root)
    for f in files:
        try:
            expected = recorded(f)
        except ChecksumError as exc:
            bad.append(str(exc))
            continue
        listed = manifest.get(shipped_name(f, args.root) or "")
        if listed is None:
            bad.append(f"{f}: not in the manifest; write it: python scripts/checksum_weights.py")
            continue
        if expected is not None and expected != listed:
            bad.append(f"{f}: its sidecar and the manifest disagree")
            continue
        if expected is None:
            bad.append(f"{f}: no sidecar; write it with python scripts/checksum_weights.py")
        elif sha256_file(f) != expected:
            bad.append(f"{f}: does not match its sidecar (restore with git checkout -- {f})")
    for line in bad:
        print(line, file=sys.stderr)
    print(f"{len(files) - len(bad)} of {len(files)} weight files match their checksums")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
