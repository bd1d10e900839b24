"""`python -m stack.tts --port N [--host H]`: serve the TTS API until interrupted."""

from __future__ import annotations

from stack.serve import serve, service_parser
from stack.tts import speech
from stack.tts.app import app


def main() -> None:
    args = service_parser("TTS service (Chatterbox TTS API subset, spoken by eSpeak NG)").parse_args()
    try:
        speech.engine()  # fail here with one clear line rather than a lifespan traceback
    except speech.SpeechError as exc:
        raise SystemExit(f"stack.tts: {exc}") from None
    serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
