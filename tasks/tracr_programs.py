"""The ACDC paper's tracr programs (RASP builders and compiler settings) and their shipped weights.

``python scripts/compile_tracr.py`` compiles them (needs tracr and JAX) with
:mod:`models.tracr` into ``tracr_weights/<program>.safetensors`` and ``.json`` beside this file;
loading those needs torch only. Every program here is a model source ``tracr/<program>``
(:mod:`models.shipped`).
"""

from __future__ import annotations

from pathlib import Path

from models import tracr
from models.tracr import RaspProgram

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


def _build_hist():
    """tracr ``lib.make_hist()``: how often each position's token occurs in the input."""
    from tracr.rasp import rasp

    same_tok = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.EQ).named("same_tok")
    return rasp.SelectorWidth(same_tok).named("hist")


def _build_sort_unique():
    """tracr ``lib.make_sort_unique(tokens, tokens)``: the tokens in increasing order (the keys,
    here the tokens themselves, must be distinct)."""
    from tracr.rasp import rasp

    smaller = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT).named("smaller")
    target_pos = rasp.SelectorWidth(smaller).named("target_pos")
    sel_new = rasp.Select(target_pos, rasp.indices, rasp.Comparison.EQ).named("sel_new")
    return rasp.Aggregate(sel_new, rasp.tokens).named("sort")


def _frac_prevs(bools, name: str):
    """tracr ``lib.make_frac_prevs(bools)`` named ``name``."""
    from tracr.rasp import rasp

    prevs = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ).named(f"prevs {name}")
    return rasp.numerical(rasp.Aggregate(prevs, bools, default=0)).named(name)


def _pair_balance(open_token: str, close_token: str, suffix: str = ""):
    """tracr ``lib.make_pair_balance(tokens, open_token, close_token)``, fixed names."""
    from tracr.rasp import rasp

    bools_open = rasp.numerical(rasp.tokens == open_token).named(f"bools_open{suffix}")
    opens = _frac_prevs(bools_open, f"opens{suffix}")
    bools_close = rasp.numerical(rasp.tokens == close_token).named(f"bools_close{suffix}")
    closes = _frac_prevs(bools_close, f"closes{suffix}")
    balance = rasp.numerical(rasp.LinearSequenceMap(opens, closes, 1, -1))
    return balance.named(f"pair_balance{suffix}")


def _build_pair_balance():
    """tracr ``lib.make_pair_balance(tokens, "(", ")")``: the fraction of tokens so far that
    open minus the fraction that close."""
    return _pair_balance("(", ")")


def _build_shuffle_dyck():
    """tracr ``lib.make_shuffle_dyck(["()"])`` (Dyck-1): 1 at every position if the parentheses
    are balanced, else 0."""
    from tracr.rasp import rasp

    balance = _pair_balance("(", ")")
    any_negative = (balance < 0).named("balance<0")
    any_negative = rasp.numerical(rasp.Map(lambda x: x, any_negative)).named("any_negative")
    select_all = rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.TRUE).named("select_all")
    has_neg = rasp.numerical(rasp.Aggregate(select_all, any_negative, default=0)).named("has_neg")
    all_zero = (balance == 0).named("all_zero")
    all_true = rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE).named("all_true")
    length = rasp.SelectorWidth(all_true).named("length")
    last = (length - 1).named("length-1")
    select_last = rasp.Select(rasp.indices, last, rasp.Comparison.EQ).named("select_last")
    last_zero = rasp.Aggregate(select_last, all_zero).named("last_zero")
    not_has_neg = (~has_neg).named("not_has_neg")
    return (last_zero & not_has_neg).named("shuffle_dyck")


# ``reverse`` needs the length of the whole input (bidirectional); ``frac_prevs`` is causal.
PROGRAMS: dict[str, RaspProgram] = {
    "reverse": RaspProgram("reverse", (1, 2, 3), 5, False, "reverse", _build_reverse),
    "proportion": RaspProgram(
        "proportion", ("w", "x", "y", "z"), 5, True, "frac_prevs", _build_proportion
    ),
    "hist": RaspProgram("hist", ("a", "b", "c"), 4, False, "hist", _build_hist),
    "sort_unique": RaspProgram(
        "sort_unique", (1, 2, 3, 4, 5), 4, False, "sort", _build_sort_unique
    ),
    "pair_balance": RaspProgram(
        "pair_balance", ("(", ")", "x"), 4, True, "pair_balance", _build_pair_balance
    ),
    "shuffle_dyck": RaspProgram(
        "shuffle_dyck", ("(", ")", "x"), 4, False, "shuffle_dyck", _build_shuffle_dyck
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
    """The shipped compiled program ``name`` as a ``HookedModel`` on ``device``."""
    reason = missing_weights_reason(name, weights_dir)
    if reason:
        raise FileNotFoundError(reason)
    return tracr.load_model(name, weights_dir, device)


def write_weights(name: str, out_dir: Path = WEIGHTS_DIR) -> tuple[Path, Path]:
    """Compile ``name`` and write its weights into ``out_dir`` (needs tracr and JAX)."""
    return tracr.write_weights(program(name), out_dir)
