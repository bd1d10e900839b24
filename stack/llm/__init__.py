"""The stack's stand-in LLM: an Ollama API subset whose model is an extractive scene planner."""
