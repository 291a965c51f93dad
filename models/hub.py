"""``transformers`` models from the Hugging Face hub or a local ``save_pretrained`` folder.

Whether a hub model can be loaded here is answered from the local cache, without a hanging
network call: a missing file is looked up in the cache first, and the hub is probed only with a
short, bounded connection attempt (never when ``HF_HUB_OFFLINE`` is set). Models load with
``AutoModelForCausalLM.from_pretrained(..., attn_implementation="eager")``, the implementation
whose numerics the exactness tests compare against.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch

from models.source import ModelSource

# What loading a model needs; each inner tuple is one way to satisfy a need (any one of its
# alternatives is enough): sharded or single weights, a tokenizer in a format transformers reads.
WEIGHTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "config": (("config.json",),),
    "weights": (("model.safetensors",), ("model.safetensors.index.json",), ("pytorch_model.bin",)),
}
TOKENIZER: dict[str, tuple[tuple[str, ...], ...]] = {
    "tokenizer": (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",)),
}
NEEDS = {**WEIGHTS, **TOKENIZER}
# Hub ids without an organisation that are taken for hub names (any other needs org/name, or a
# copy in the local cache).
KNOWN_IDS = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2")
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


# ----- names ------------------------------------------------------------------------------------
def is_known_id(name: str) -> bool:
    return name in KNOWN_IDS


def is_path_like(name: str) -> bool:
    """An existing path, or a name written as one (``/...``, ``./...``, ``~/...``, ``a/b/c``)."""
    return (
        Path(name).expanduser().exists()
        or name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def is_hub_name(name: str) -> bool:
    """``org/name``, a known id (:data:`KNOWN_IDS`), or a model whose config is cached."""
    return bool(_HUB_NAME.fullmatch(name)) or is_known_id(name) or _cached(name, "config.json")


# ----- the local cache and the hub --------------------------------------------------------------
def _cached(repo_id: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo_id, filename)
    except (ImportError, ValueError):  # no huggingface_hub, or not a valid repo id
        return False
    return isinstance(path, str) and os.path.isfile(path)


def missing_from_cache(repo_id: str, needs: dict[str, tuple[tuple[str, ...], ...]]) -> list[str]:
    """The needs (e.g. ``weights``) that no alternative satisfies from the local cache."""
    return [
        need
        for need, alternatives in needs.items()
        if not any(all(_cached(repo_id, f) for f in files) for files in alternatives)
    ]


def _offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds (DNS included)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    thread.start()
    thread.join(timeout + 0.5)
    return result[0]


def unavailable_reason(
    repo_id: str, needs: dict[str, tuple[tuple[str, ...], ...]] = NEEDS
) -> str | None:
    """None when ``repo_id``'s files are cached or the hub answers; else why it can't load."""
    missing = missing_from_cache(repo_id, needs)
    if not missing:
        return None
    what = f"{repo_id!r} {', '.join(missing)} not in the local Hugging Face cache"
    if _offline():
        return f"{what} and HF_HUB_OFFLINE is set: run once with network access to cache them"
    if not hub_reachable():
        return f"{what} and the hub is unreachable: run once with network access to cache them"
    return None


def folder_reason(path: str) -> str | None:
    """Why the folder ``path`` holds no ``transformers`` model, or None."""
    if not Path(path).exists():
        return f"{path}: no such folder"
    if not Path(path).is_dir():
        return f"{path} is not a folder: a local model is a save_pretrained folder"
    if not Path(path, "config.json").is_file():
        return f"{path} is a folder without config.json: not a transformers model"
    return None


def weight_files(name: str) -> list[Path]:
    """The config and weight files of a local folder or a cached hub model (none cached: [])."""
    names = [f for alts in WEIGHTS.values() for files in alts for f in files]
    if Path(name).is_dir():
        found = [Path(name, f) for f in names if Path(name, f).is_file()]
        found += sorted(Path(name).glob("*.safetensors")) + sorted(Path(name).glob("*.bin"))
        return sorted(set(found))
    try:
        from huggingface_hub import try_to_load_from_cache

        paths = [try_to_load_from_cache(name, f) for f in names]
    except (ImportError, ValueError):
        return []
    return sorted({Path(p) for p in paths if isinstance(p, str) and Path(p).is_file()})


# ----- loading ----------------------------------------------------------------------------------
def load(name_or_path: str, dtype: torch.dtype | None = None, device: str | None = None):
    """``AutoModelForCausalLM.from_pretrained`` with eager attention, in eval mode. Raises
    ``OSError`` with the reason when the hub or the folder can't be read."""
    from transformers import AutoModelForCausalLM

    if Path(name_or_path).is_dir() and not Path(name_or_path, "config.json").is_file():
        raise OSError(folder_reason(name_or_path))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, attn_implementation="eager", dtype=dtype or torch.float32
        )
    except OSError as e:
        raise OSError(
            f"could not load {name_or_path!r} with transformers (no hub access and no local "
            f"copy?): {e}"
        ) from e
    model = model.eval()
    return model.to(device) if device else model


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)


# ----- sources ----------------------------------------------------------------------------------
def hub_source(name: str) -> ModelSource:
    return ModelSource(
        name=name,
        kind="hub",
        description=f"{name} from the Hugging Face hub (or its local cache)",
        loader=lambda device, dtype: load(name, dtype, device),
        reason=lambda: unavailable_reason(name),
        tokenizer_loader=lambda: load_tokenizer(name),
        files=lambda: weight_files(name),
    )


def local_source(path: str) -> ModelSource:
    """A ``save_pretrained`` folder (its absolute path is the source's name)."""
    full = str(Path(path).expanduser().resolve())

    def loader(device, dtype):
        reason = folder_reason(full)
        if reason is not None:
            raise OSError(f"could not load {full!r}: {reason}")
        return load(full, dtype, device)

    return ModelSource(
        name=full,
        kind="local",
        description=f"transformers model in the folder {full}",
        loader=loader,
        reason=lambda: folder_reason(full),
        tokenizer_loader=lambda: load_tokenizer(full),
        files=lambda: weight_files(full),
    )
