"""The induction model: its shape, where the shipped checkpoint lies, and how to load it.

Shared by :mod:`tasks.induction.train` (which writes the checkpoint), :mod:`tasks.induction`
(which loads it for the task) and :mod:`tasks.induction.groundtruth` (which scores its heads),
so none of them imports another's entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.induction.data import ModelConfig

HERE = Path(__file__).parent
CHECKPOINT = HERE / "model.safetensors"
TRAIN_RECORD = HERE / "train_record.json"


def build_model(cfg: ModelConfig):
    """A freshly initialised :class:`patching.hooked.HookedModel` of shape ``cfg`` (the
    ``HookedTransformer`` layout the checkpoint is stored in)."""
    from patching.hooked import HookedModel

    return HookedModel(cfg.hooked_config())


def recorded_config(record_path: Path = TRAIN_RECORD) -> ModelConfig:
    """The model shape stored in the training record."""
    return ModelConfig(**json.loads(record_path.read_text())["model_config"])


def load(checkpoint: Path = CHECKPOINT, record_path: Path = TRAIN_RECORD, device: str = "cpu"):
    """The shipped model, in eval mode (its shape read from the training record)."""
    from safetensors.torch import load_file

    from core.checksum import verify

    verify(checkpoint, regenerate="python -m tasks.induction.train")  # D1: damaged in place
    model = build_model(recorded_config(record_path))
    missing, unexpected = model.load_state_dict(load_file(str(checkpoint)), strict=False)
    params = {k for k, _ in model.named_parameters()}
    if unexpected or params & set(missing):
        raise RuntimeError(
            f"checkpoint {checkpoint} does not match the recorded config: missing "
            f"{sorted(params & set(missing))}, unexpected {sorted(unexpected)}"
        )
    return model.to(device, print_details=False).eval()
