"""Fast detection of Hugging Face Hub reachability, so offline use fails in one line instead of hanging."""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = "huggingface.co"


@functools.cache
def hub_reachable(timeout: float = 1.5) -> bool:
    """True when the hub answers a TCP connect; honours HF_HUB_OFFLINE=1 and HBT_OFFLINE=1."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HBT_OFFLINE") == "1":
        return False
    endpoint = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def go_offline_if_unreachable() -> bool:
    """Set HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE when the hub is unreachable; return reachability."""
    online = hub_reachable()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return online
