"""storyteller: a terminal text adventure narrated by a local LLM."""

__version__ = "0.1.0"
