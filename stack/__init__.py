"""The bundled text-to-video deployment: redis, llm, tts and server, speaking ../shared/CONTRACT.md."""

from stack.launcher import Stack, StackError, StackURLs, running_stack

__all__ = ["Stack", "StackError", "StackURLs", "running_stack"]
