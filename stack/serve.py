"""The one way every HTTP service of the stack is started: `python -m stack.<name> --port N`."""

from __future__ import annotations

import argparse

import uvicorn


def service_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    return parser


def serve(app, host: str, port: int) -> None:
    """Run an ASGI app until SIGINT/SIGTERM; quiet logs, bounded graceful shutdown."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
