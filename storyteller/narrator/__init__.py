"""Narrator backends (llama.cpp, transformers, an OpenAI-compatible server, the scripted
one) behind the protocol in storyteller.generation; each is imported only when loaded."""
