"""What a run wrote into its folder, so that ``--overwrite`` removes exactly that (issue 20).

``manifest.json`` lists every file the run created (paths relative to the folder): the files
present after each job and at the end that were not there when the run started. The user's own
files (put there before the run, or into ``scores/`` between runs) are never listed, so never
removed. A folder of an older run without a manifest falls back to the names the runner writes:
the top-level files, ``plots/``, and in ``logs/``, ``scores/``, ``traces/``, ``circuits/`` and
``mib/`` the files of the runs its ``records.csv`` lists.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.records import RECORDS, atomic_write_text, read_records, run_name

MANIFEST = "manifest.json"
LOCK = ".lock"
TOP_FILES = ("records.csv", "curves.json", "run.json", "summary.md", MANIFEST)
RUN_FOLDERS = ("logs", "scores", "traces", "circuits", "mib")  # files named by run_name


def snapshot(folder: str | Path) -> set[str]:
    """Relative paths of every file under ``folder`` (the lock and temporary files left out)."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name != LOCK and not p.name.endswith(".tmp")
    }


class Manifest:
    """The files a run created in ``folder``: everything not in ``before`` (taken at its start),
    plus what an earlier part of the run listed (``--resume``)."""

    def __init__(self, folder: str | Path, before: set[str], earlier: set[str] = frozenset()):
        self.folder, self.before, self.earlier = Path(folder), set(before), set(earlier)

    def update(self) -> None:
        files = (snapshot(self.folder) - self.before) | self.earlier | {MANIFEST}
        atomic_write_text(self.folder / MANIFEST, json.dumps(sorted(files), indent=0) + "\n")


def listed(folder: str | Path) -> set[str] | None:
    """The files ``folder``'s manifest lists, or None without (a damaged one is None too)."""
    try:
        files = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def _legacy(folder: Path) -> set[str]:
    """A run folder without a manifest: the names eval.run writes."""
    files = {f for f in TOP_FILES if (folder / f).exists()}
    files |= {str(p.relative_to(folder)) for p in (folder / "plots").rglob("*") if p.is_file()}
    try:
        stems = {run_name(r.method, r.task, r.seed) for r in read_records(folder)}
    except (OSError, ValueError):
        stems = set()
    for sub in RUN_FOLDERS:
        for p in (folder / sub).glob("*") if (folder / sub).is_dir() else ():
            if p.is_file() and p.name.split(".", 1)[0] in stems:
                files.add(str(p.relative_to(folder)))
    return files


def remove_previous_run(folder: str | Path) -> list[str]:
    """Remove what the previous run in ``folder`` wrote (its manifest, else :func:`_legacy`),
    and the subfolders that leaves empty; nothing else. Returns the removed paths."""
    folder = Path(folder)
    files = listed(folder)
    if files is None:
        files = _legacy(folder) if (folder / RECORDS).exists() else set()
    removed = []
    for rel in sorted(files):
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            continue  # a manifest naming a path outside the folder: never followed
        path = folder / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(rel)
    for sub in sorted({Path(r).parent for r in removed}, key=lambda p: -len(p.parts)):
        d = folder / sub
        while d != folder and d.is_dir() and not any(d.iterdir()):
            d.rmdir()
            d = d.parent
    return removed
