"""Can a Hugging Face model be loaded here? Answered from the local cache, without a hanging
network call: a missing file is looked up in the cache first, and the hub is probed only with a
short, bounded connection attempt (never when ``HF_HUB_OFFLINE`` is set)."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

# Each inner tuple is one way to satisfy a need (any one of its alternatives is enough).
GPT2_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "config": (("config.json",),),
    "weights": (("model.safetensors",), ("pytorch_model.bin",)),
    "tokenizer": (("tokenizer.json",), ("vocab.json", "merges.txt")),
}


def _cached(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, filename)
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


def unavailable_reason(repo_id: str, needs: dict[str, tuple[tuple[str, ...], ...]]) -> str | None:
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
