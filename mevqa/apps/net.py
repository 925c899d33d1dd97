"""Network checks the app needs before it starts (light: the CLI runs them before importing Gradio)."""
from __future__ import annotations

import socket


def check_port(host: str, port: int) -> None:
    """OSError naming the flag to use when ``host:port`` cannot be listened on, so the error comes
    before any URL is announced (Gradio's own error names an environment variable instead)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                          "choose another port with --port") from None
