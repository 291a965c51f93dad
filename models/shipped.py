"""The models whose weights ship in this repository: ``tracr/<program>`` for every tracr program
(:data:`tasks.tracr_programs.PROGRAMS`, weights in ``tasks/tracr_weights/``), ``induction``
(``tasks/induction/model.safetensors``) and ``siit/<program>/s<seed>`` for every learned model
that passed its checks (:mod:`tasks.siit`, ``tasks/siit/models/``). They take token ids (no
tokenizer).

Which programs exist and where the weights lie is the tasks' business; this module only makes
them sources (it imports ``tasks``, so :mod:`models.source` imports it on first need).
"""

from __future__ import annotations

from models.source import ModelSource, register_source
from tasks import tracr_programs
from tasks.induction import model as induction_model


def _to(model, dtype):
    return model if dtype is None else model.to(dtype)


def _tracr(program: str) -> ModelSource:
    weights = tracr_programs.WEIGHTS_DIR / f"{program}.safetensors"
    return ModelSource(
        name=f"tracr/{program}",
        kind="shipped",
        description=f"tracr-compiled RASP program {program!r} (tasks/tracr_weights/)",
        loader=lambda device, dtype: _to(tracr_programs.load_model(program, device), dtype),
        reason=lambda: tracr_programs.missing_weights_reason(program),
        files=lambda: [weights] if weights.is_file() else [],
    )


def _induction_reason() -> str | None:
    m = induction_model
    missing = [p.name for p in (m.CHECKPOINT, m.TRAIN_RECORD) if not p.exists()]
    if missing:
        return f"missing {', '.join(missing)} in {m.HERE}; run `python -m tasks.induction.train`"
    return None


def _induction() -> ModelSource:
    m = induction_model  # its paths are read when used (a test may point them elsewhere)
    return ModelSource(
        name="induction",
        kind="shipped",
        description="2-layer attention-only induction model (tasks/induction/model.safetensors)",
        loader=lambda device, dtype: _to(m.load(m.CHECKPOINT, m.TRAIN_RECORD, device), dtype),
        reason=_induction_reason,
        files=lambda: [m.CHECKPOINT] if m.CHECKPOINT.is_file() else [],
    )


for _program in tracr_programs.PROGRAMS:
    register_source(f"tracr/{_program}", lambda p=_program: _tracr(p))
register_source("induction", _induction)


def _siit(folder) -> ModelSource:
    from tasks.siit import model as siit_model

    files = [folder / siit_model.MODEL_FILE]
    return ModelSource(
        name=f"siit/{folder.parent.name}/{folder.name}",
        kind="shipped",
        description=f"learned (SIIT) model of tracr program {folder.parent.name!r}, "
        f"{folder.relative_to(folder.parents[3])}",
        loader=lambda device, dtype: _to(siit_model.load_low(folder, device), dtype),
        reason=lambda: None if files[0].is_file() else f"missing {files[0]}",
        files=lambda: [f for f in files if f.is_file()],
    )


def _register_siit() -> None:
    from tasks.siit.task import shipped_folders

    for folder in shipped_folders():
        register_source(f"siit/{folder.parent.name}/{folder.name}", lambda f=folder: _siit(f))


_register_siit()
