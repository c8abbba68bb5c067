"""A public https URL for the local service, so Twilio can reach a laptop (``ivr dev --ngrok``).

pyngrok is an optional extra: ``pip install 'service-pin-ivr[ngrok]'``. The tunnel's URL
becomes ``[server] public_base_url``, because Twilio signs over the URL it called.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ivr.exceptions import IVRError

INSTALL_HINT = "pip install 'service-pin-ivr[ngrok]'"


class TunnelError(IVRError):
    """The tunnel could not be opened; the message names the fix."""


@dataclass(frozen=True)
class Tunnel:
    """An open tunnel: its public https URL, and how to close it."""

    public_url: str
    close: Callable[[], None]


TunnelFactory = Callable[[int], Tunnel]
"""Opens a tunnel to a local port (``ivr dev`` takes it as a parameter)."""


def https(url: str) -> str:
    """ngrok serves every endpoint over https too; Twilio should use that."""
    return "https://" + url.removeprefix("http://") if url.startswith("http://") else url


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def ngrok_tunnel(port: int, pyngrok_config: Any = None) -> Tunnel:
    """Open an ngrok http tunnel to ``port`` on 127.0.0.1 with pyngrok."""
    try:
        from pyngrok import ngrok
        from pyngrok.exception import PyngrokError
    except ImportError:
        raise TunnelError(
            f"--ngrok needs pyngrok, which is not installed: {INSTALL_HINT}"
        ) from None

    def close() -> None:
        with contextlib.suppress(PyngrokError, OSError):  # already gone: nothing to stop
            ngrok.kill(pyngrok_config)

    try:
        opened = ngrok.connect(str(port), "http", pyngrok_config=pyngrok_config)
    except (PyngrokError, OSError) as exc:
        close()
        raise TunnelError(
            f"ngrok could not open a tunnel ({_one_line(exc)}): check your internet connection "
            "and run `ngrok config add-authtoken <token>` (or set NGROK_AUTHTOKEN)"
        ) from None
    public_url = opened.public_url
    if not public_url:
        close()
        raise TunnelError("ngrok opened a tunnel without a public URL: upgrade pyngrok and ngrok")
    return Tunnel(https(public_url), close)
