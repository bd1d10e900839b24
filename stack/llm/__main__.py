"""`python -m stack.llm --port N`: serve the Ollama API subset with the extractive planner."""

from __future__ import annotations

from stack.serve import serve, service_parser


def main(argv: list[str] | None = None) -> None:
    parser = service_parser(
        "Ollama API subset (/api/version, /api/tags, /api/chat, /api/generate) and its OpenAI-style API "
        "(/v1/models, /v1/chat/completions) "
        "whose only model, extractive-planner, cuts the prompt's document into narrated scenes."
    )
    parser.prog = "python -m stack.llm"
    args = parser.parse_args(argv)
    from stack.llm.app import create_app  # after parsing, so --help does not load FastAPI

    serve(create_app(), args.host, args.port)


if __name__ == "__main__":
    main()
