"""The ACDC paper's tracr programs (RASP builders and compiler settings) and their shipped weights.

``python scripts/compile_tracr.py`` compiles them (needs tracr and JAX) with
:mod:`patching.adapters.tracr` into ``tracr_weights/<program>.safetensors`` and ``.json`` beside
this file; the tasks load those files with torch only.
"""

from __future__ import annotations

from pathlib import Path

from patching.adapters import tracr
from patching.adapters.tracr import RaspProgram

WEIGHTS_DIR = Path(__file__).parent / "tracr_weights"


def _build_reverse():
    """tracr ``lib.make_reverse(tokens)``, with fixed names for every SOp."""
    from tracr.rasp import rasp

    all_true = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("all_true")
    length = rasp.SelectorWidth(all_true).named("length")
    opp_idx = (length - rasp.indices).named("opp_idx")
    opp_idx = (opp_idx - 1).named("opp_idx-1")
    flip = rasp.Select(rasp.indices, opp_idx, rasp.Comparison.EQ).named("reverse_selector")
    return rasp.Aggregate(flip, rasp.tokens).named("reverse")


def _build_proportion():
    """tracr ``lib.make_frac_prevs(tokens == "x")``: the running fraction of ``x`` tokens."""
    from tracr.rasp import rasp

    is_x = rasp.numerical(rasp.Map(lambda t: t == "x", rasp.tokens)).named("is_x")
    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named("prevs")
    return rasp.numerical(rasp.Aggregate(prevs, is_x, default=0)).named("frac_prevs")


# ``reverse`` needs the length of the whole input (bidirectional); ``frac_prevs`` is causal.
PROGRAMS: dict[str, RaspProgram] = {
    "reverse": RaspProgram("reverse", (1, 2, 3), 5, False, "reverse", _build_reverse),
    "proportion": RaspProgram(
        "proportion", ("w", "x", "y", "z"), 5, True, "frac_prevs", _build_proportion
    ),
}


def program(name: str) -> RaspProgram:
    """The program registered as ``name``."""
    if name not in PROGRAMS:
        raise ValueError(f"unknown tracr program {name!r}; choose one of {sorted(PROGRAMS)}")
    return PROGRAMS[name]


def missing_weights_reason(name: str, weights_dir: Path = WEIGHTS_DIR) -> str | None:
    """Why the shipped weights of ``name`` can't be read, or None."""
    missing = tracr.missing_files(program(name).name, weights_dir)
    if missing:
        paths = ", ".join(map(str, missing))
        return f"missing {paths}; regenerate with `python scripts/compile_tracr.py`"
    return None


def load_meta(name: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    return tracr.load_meta(program(name).name, weights_dir)


def load_model(name: str, device: str = "cpu", weights_dir: Path = WEIGHTS_DIR):
    """The shipped compiled program ``name`` as a ``HookedTransformer`` on ``device``."""
    reason = missing_weights_reason(name, weights_dir)
    if reason:
        raise FileNotFoundError(reason)
    return tracr.load_model(name, weights_dir, device)


def write_weights(name: str, out_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    """Compile ``name`` and write its weights into ``out_dir`` (needs tracr and JAX)."""
    return tracr.write_weights(program(name), out_dir)
