"""Narrator backends behind one small protocol (see base.py); loaded lazily."""

from storyteller.narrator.base import (
    GenerationStats,
    Message,
    Narrator,
    NarratorError,
    RenderedPrompt,
    SamplingOptions,
)

__all__ = [
    "GenerationStats",
    "Message",
    "Narrator",
    "NarratorError",
    "RenderedPrompt",
    "SamplingOptions",
]
