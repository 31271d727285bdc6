"""Run an app with uvicorn, after checking that its address can be bound."""

from __future__ import annotations

import socket

from fastapi import FastAPI

from deepmars.errors import DataError
from deepmars.web.settings import WebSettings


def check_port(host: str, port: int) -> None:
    """DataError naming the address when it cannot be bound (in use, or not an address here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DataError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); set port=... "
                            "(or host=...) to another") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve(app: FastAPI, settings: WebSettings, what: str) -> None:
    """Serve until Ctrl-C, printing the address first."""
    import uvicorn

    check_port(settings.host, settings.port)
    source = f" {settings.catalog}" if settings.catalog is not None else ""
    print(f"{what}: serving{source} at {settings.address}  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
