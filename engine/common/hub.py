"""Fast detection of Hugging Face Hub reachability, so offline use fails in one line instead of hanging.

The probe asks the endpoint (`HF_ENDPOINT`, default https://huggingface.co) for an HTTP answer on its own host and
port, and the whole of it (DNS lookup, connect, TLS, the answer's status line) runs under one overall time limit: a
hub that accepts the connection but never answers counts as unreachable. Only commands that load a model or data
probe at all (`hbt-bench list presets`, `show`, `export`... never do).
"""

from __future__ import annotations

import functools
import http.client
import os
import threading
from urllib.parse import urlsplit

HUB_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 3.0


def endpoint() -> tuple[str, str, int]:
    """(scheme, host, port) of the hub endpoint."""
    parts = urlsplit(os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}"))
    scheme = parts.scheme or "https"
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, parts.hostname or HUB_HOST, port or (80 if scheme == "http" else 443)


def _answers(scheme: str, host: str, port: int, timeout: float) -> bool:
    cls = http.client.HTTPConnection if scheme == "http" else http.client.HTTPSConnection
    conn = cls(host, port, timeout=timeout)
    try:
        conn.request("HEAD", "/api/models?limit=1", headers={"User-Agent": "hbt-probe"})
        conn.getresponse()  # any status line is an answer
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def offline_by_setting() -> bool:
    """The user turned the hub off (HF_HUB_OFFLINE=1 or HBT_OFFLINE=1): nothing will be downloaded, no probe needed."""
    return os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HBT_OFFLINE") == "1"


@functools.cache
def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the hub endpoint answers an HTTP request within `timeout` seconds overall (DNS included);
    honours HF_HUB_OFFLINE=1 and HBT_OFFLINE=1."""
    if offline_by_setting():
        return False
    scheme, host, port = endpoint()
    result: list[bool] = []
    # getaddrinfo takes no timeout: the probe runs in a daemon thread that is abandoned when the limit passes
    probe = threading.Thread(target=lambda: result.append(_answers(scheme, host, port, timeout)), daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(result and result[0])


def go_offline_if_unreachable() -> bool:
    """Set HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE when the hub is unreachable; return reachability."""
    online = hub_reachable()
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    return online
