"""Sampling that cannot copy: the small models' commonest failure is to answer with their
previous narration again, word for word (the loop guard then tells the turn again, and
again: a higher repeat penalty does not help, since llama.cpp's penalty only sees the
last 64 tokens, not the prompt's previous answer). While sampling, a token that would
make a run of COPY_RUN tokens found in that text is banned, so an answer may share
names and short phrases with it but never copy it."""

from __future__ import annotations

from collections.abc import Sequence

COPY_RUN = 5  # tokens: names and short phrases are shorter


class NoCopy:
    """A llama-cpp-python logits processor banning the tokens that would extend a run of
    `run` tokens copied from `source`."""

    def __init__(self, source: Sequence[int], run: int = COPY_RUN):
        self.run = run
        self.next_of: dict[tuple[int, ...], set[int]] = {}
        for start in range(len(source) - run + 1):
            head = tuple(source[start:start + run - 1])
            self.next_of.setdefault(head, set()).add(source[start + run - 1])

    def banned(self, context: Sequence[int]) -> set[int]:
        """The tokens that may not follow `context` (the tokens so far)."""
        if len(context) < self.run - 1:
            return set()
        return self.next_of.get(tuple(context[len(context) - self.run + 1:]), set())

    def __call__(self, input_ids, scores):
        for token in self.banned(input_ids[-(self.run - 1):].tolist()):
            scores[token] = -float("inf")
        return scores
