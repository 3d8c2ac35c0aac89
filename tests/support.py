"""Helpers shared by tests of several layers."""

import os
import subprocess
import sys

from storyteller.context.prompt import Budget, BudgetShares, PromptMemory, PromptParts, build_prompt
from storyteller.storage.transcript import Turn

MODEL_WAIT = 300  # seconds: generous, the test machine's cores are shared


def run_cli(*args, cwd, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "storyteller", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


class RecordingNarrator:
    """Passes everything to the real narrator and keeps the token lists it was sent."""

    def __init__(self, inner):
        self.inner = inner
        self.sent = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, prompt, *args, **kwargs):
        self.sent.append(list(prompt.tokens))
        return self.inner.stream(prompt, *args, **kwargs)


def common_prefix(a, b):
    length = 0
    while length < min(len(a), len(b)) and a[length] == b[length]:
        length += 1
    return length


def turns(count, words=20):
    return [Turn(i, f"action {i}", " ".join(["word"] * words)) for i in range(1, count + 1)]


def memories(count):
    return [PromptMemory(f"m{i}", "event", f"memory number {i}", 1.0 - i / 100)
            for i in range(count)]


def full_parts(history=3, memory_count=2, player_input="look", recalled=1, asks=False):
    return PromptParts(system="You narrate.", opening="It begins.",
                       pinned=[PromptMemory("p0", "fact", "The key is red.", 1.0)],
                       summary="Long ago, a storm.",
                       recalled=[PromptMemory("r0", "lore", "the old well is dry", 1.0)][:recalled],
                       history=turns(history), memories=memories(memory_count),
                       player_input=player_input, asks_about_the_past=asks)


def fit(narrator, parts, max_tokens, shares=None):
    return build_prompt(narrator, parts,
                        Budget(narrator.n_ctx, max_tokens, shares or BudgetShares()))
