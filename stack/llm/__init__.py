"""The stack's stand-in LLM: an Ollama API subset whose model is an extractive scene planner."""

# Here rather than in app.py so that the launcher can name the model without importing FastAPI.
MODEL_NAME = "extractive-planner"
