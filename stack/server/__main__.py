"""`python -m stack.server --port P --redis-url ... --tts-url ... --llm-url ... --llm-model ... --data-dir ...`"""

from __future__ import annotations

import logging

from stack.serve import serve
from stack.server.app import create_app
from stack.server.settings import parse_settings


def main(argv: list[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request to llm/tts is noise
    serve(create_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
