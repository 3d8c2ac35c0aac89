"""`storyteller prompt`: the prompt the next turn would be told from, for each of a list
of inputs, built by the turn's own code path (TurnPipeline.plan) and never told.

The campaign is opened read-only (under its lock, like play: a campaign open in another
storyteller is refused): campaign.json is not migrated or updated, the memory
is read from a copy of its index and takes no notes, no summary is written. Only the
model's tokenizer and chat template are loaded (llama.cpp: the vocabulary, no weights)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from storyteller.config import Settings
from storyteller.context.prompt import Budget, PromptPlan, system_prompt
from storyteller.engine.pipeline import turn_pipeline
from storyteller.engine.session import load_campaign, settings_in_force
from storyteller.errors import SaveError
from storyteller.generation import check_max_tokens
from storyteller.memory.story import StoryMemory
from storyteller.narrator.registry import load_tokenizer, with_preset_sampling
from storyteller.storage.lock import hold_campaign
from storyteller.storage.names import campaign_path
from storyteller.text import clean_player_input, shared_prefix, strip_control


@dataclass
class PromptPreview:
    """One input's prompt, with what a turn's trace would say about it."""

    input: str
    plan: PromptPlan
    retrieved: list[dict]
    evaluated_tokens: int  # not shared with the previous prompt's start: a cache evaluates these
    budget: Budget
    first: bool = True  # no input before this one

    @property
    def prompt_tokens(self) -> int:
        return len(self.plan.rendered)

    def to_json(self) -> str:
        return json.dumps({
            "input": self.input, "prompt": self.plan.rendered.text,
            "prompt_tokens": self.prompt_tokens, "evaluated_tokens": self.evaluated_tokens,
            "sections": {section.name: section.tokens for section in self.plan.sections},
            "retrieved": self.retrieved})  # ASCII: printable whatever the terminal's encoding

    def describe(self) -> str:
        """The prompt as the model gets it, then its sections, what was left out and what
        memory put in."""
        rule = "─" * 72
        lines = [rule, f"Prompt for: {strip_control(self.input)}", rule,
                 strip_control(self.plan.rendered.text), rule,
                 f"{self.prompt_tokens} of {self.budget.prompt_limit} tokens (n_ctx "
                 f"{self.budget.n_ctx}, {self.budget.max_tokens} kept for the answer)"
                 + ("" if self.first else f"; {self.evaluated_tokens} to evaluate after the "
                                          "previous input's prompt")]
        for section in self.plan.sections:
            dropped = f"  ({section.dropped} left out to fit)" if section.dropped else ""
            lines.append(f"  {section.name:<9}{section.tokens:>6} tokens{dropped}")
        if self.retrieved:
            lines.append("What memory put in:")
        lines += [f"  {item['section']:<9}{item['id']} ({item['via']}, score {item['score']})"
                  for item in self.retrieved]
        lines += [f"  ! {strip_control(notice)}" for notice in self.plan.notices]
        return "\n".join(lines)


class PromptPreviewer:
    """The campaign's next turn, planned for one input after another."""

    def __init__(self, settings: Settings, name: str):
        # A campaign open elsewhere is refused: its index may change under the copy.
        self._lock = hold_campaign(campaign_path(settings.saves_dir, name))
        self._snapshot = tempfile.TemporaryDirectory(prefix="storyteller-prompt-")
        self.memory = None
        self.narrator = None
        try:
            campaign, world = load_campaign(settings, name, read_only=True)
            settings = settings_in_force(with_preset_sampling(settings), campaign)
            self.memory = StoryMemory.open_read_only(campaign, world, settings.memory_url,
                                                     Path(self._snapshot.name))
            self.narrator = load_tokenizer(settings)
            check_max_tokens(settings.max_tokens, self.narrator.n_ctx)
        except BaseException:
            self.close()
            raise
        self.campaign = campaign
        self.settings = settings
        self.pipeline = turn_pipeline(campaign, self.narrator, self.narrator, settings, world,
                                      system_prompt(settings.prompts_dir, world), self.memory)
        self._previous: list[int] = []

    def preview(self, player_input: str) -> PromptPreview:
        text = action(player_input, self.settings)
        history = self.campaign.turns
        plan, recall, _ = self.pipeline.plan(history, self.campaign.next_turn_number, text)
        tokens = plan.rendered.tokens
        shared = shared_prefix(self._previous, tokens)
        first, self._previous = not self._previous, tokens
        return PromptPreview(text, plan, self.pipeline.retrieved(plan, recall),
                             len(plan.rendered) - shared, self.pipeline.budget, first)

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
        if self.narrator is not None:
            self.narrator.close()
        self._snapshot.cleanup()
        self._lock.release()


def action(player_input: str, settings: Settings) -> str:
    """The input as a turn would take it (cleaned like the game's); a command is refused."""
    text, _ = clean_player_input(player_input, settings.max_input_chars)
    if text.startswith("/"):
        raise SaveError(f"{text.split()[0]!r} is a command; `storyteller prompt` shows the "
                        "prompt of an action.")
    return text


def preview_prompts(settings: Settings, name: str, inputs: list[str], as_json: bool) -> int:
    """Print each input's prompt (one JSON line each with as_json)."""
    inputs = [line for line in inputs if action(line, settings)]  # all checked first
    if not inputs:
        raise SaveError("No input to show the prompt for; give a TEXT or a --file with "
                        "one input a line.")
    previewer = PromptPreviewer(settings, name)
    try:
        for player_input in inputs:
            preview = previewer.preview(player_input)
            print(preview.to_json() if as_json else preview.describe(), flush=True)
    finally:
        previewer.close()
    return 0
