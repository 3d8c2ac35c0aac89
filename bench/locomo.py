"""LoCoMo: is the utterance a question needs in the prompt the narrator gets?

Each of the five conversations in ../shared/data/locomo/ (LoCoMo, CC BY-NC: read from
there, never copied into the project) becomes a story: every utterance of the first
speaker with the second speaker's reply is one turn (input = the first speaker's line,
output = the reply; either may be empty at a session's edges), and a session's date
goes in front of its first line. Every question of categories 1-4 is then asked at
n_ctx 2048 and 4096. An evidence utterance counts as found when its whole text is in
the prompt (exact substring after folding whitespace and case).

Storyteller: `storyteller import` once per conversation, then `storyteller prompt
--json --file` once per n_ctx (a subprocess each, so this measures exactly what a
player gets). The baselines get the same budget (the prompt limit minus the system
prompt and the question) counted with the same tokenizer (the embedded SmolLM2 GGUF's,
vocabulary only): the recent window; the three nearest turns (MiniLM, the game's
embedder) plus the window; nearest turns until full; BM25 (SQLite FTS5, storyteller's
lexical index) until full.

`python -m bench locomo` writes the section into bench/RESULTS.md; `run()` returns it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import BENCH_DIR, percentile, table

ROOT = BENCH_DIR.parent
DATA_FILE = ROOT / ".." / "shared" / "data" / "locomo" / "locomo-dev5.json"
N_CTXS = (2048, 4096)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
NEAREST_FIRST = 3  # "three nearest turns plus the window"
RECENT_KEPT = 4  # done means: the last 4 turns are still in storyteller's prompt
STORYTELLER = "storyteller"
BASELINES = ("recent window", "3 nearest + window", "nearest until full", "BM25 until full")
METHODS = (STORYTELLER, *BASELINES)
COMMAND_TIMEOUT_S = 3600
_SESSION_KEY = re.compile(r"session_(\d+)")
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False"}


# -- a conversation as a story --------------------------------------------------------


@dataclass(frozen=True)
class StoryTurn:
    input: str
    output: str

    @property
    def text(self) -> str:
        return f"{self.input}\n{self.output}".strip()

    def to_json(self) -> str:
        return json.dumps({"input": self.input, "output": self.output}, ensure_ascii=False)


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: tuple[str, ...]  # the texts of the utterances that answer it


@dataclass
class Conversation:
    sample_id: str
    turns: list[StoryTurn]
    questions: list[Question]


def sessions(conversation: dict) -> list[tuple[str, list[dict]]]:
    """(date, utterances) of each session, in session order."""
    numbered = []
    for key, value in conversation.items():
        match = _SESSION_KEY.fullmatch(key)
        if match and isinstance(value, list):
            numbered.append((int(match.group(1)), conversation.get(f"{key}_date_time", ""),
                             value))
    return [(date, utterances) for _, date, utterances in sorted(numbered)]


def story_turns(conversation: dict) -> list[StoryTurn]:
    """The first speaker's utterances, each with the second speaker's reply; a turn never
    spans two sessions."""
    first = conversation["speaker_a"]
    turns: list[StoryTurn] = []
    for date, utterances in sessions(conversation):
        said: str | None = None
        for position, utterance in enumerate(utterances):
            text = utterance["text"]
            if position == 0 and date:
                text = f"({date}) {text}"
            if utterance["speaker"] == first:
                if said is not None:
                    turns.append(StoryTurn(said, ""))
                said = text
            else:
                turns.append(StoryTurn(said or "", text))
                said = None
        if said is not None:
            turns.append(StoryTurn(said, ""))
    return turns


def utterance_texts(conversation: dict) -> dict[str, str]:
    return {utterance["dia_id"]: utterance["text"]
            for _, utterances in sessions(conversation) for utterance in utterances}


def questions_of(sample: dict) -> list[Question]:
    """Questions of categories 1-4 with the utterances they name; an evidence id that
    names no utterance is skipped, and so is a question left with none."""
    texts = utterance_texts(sample["conversation"])
    questions = []
    for qa in sample["qa"]:
        if qa.get("category") not in CATEGORIES:
            continue
        evidence = tuple(texts[dia_id] for dia_id in qa.get("evidence", []) if dia_id in texts)
        if evidence:
            questions.append(Question(" ".join(str(qa["question"]).split()),
                                      qa["category"], evidence))
    return questions


def read_conversations(path: Path = DATA_FILE) -> list[Conversation]:
    samples = json.loads(path.read_text(encoding="utf-8"))
    return [Conversation(sample["sample_id"], story_turns(sample["conversation"]),
                         questions_of(sample)) for sample in samples]


# -- what counts as found ---------------------------------------------------------------


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def found_evidence(prompt: str, evidence: Iterable[str]) -> list[bool]:
    """For each evidence utterance: is its whole text in the prompt?"""
    folded = fold(prompt)
    return [fold(text) in folded for text in evidence]


# -- the baselines: which turns fill the budget -------------------------------------------


def fill(order: Iterable[int], costs: Sequence[int], room: int,
         chosen: Sequence[int] = ()) -> list[int]:
    """Turns in `order` while they fit: one too long for the room left is skipped and the
    next ones are still tried."""
    kept, seen = list(chosen), set(chosen)
    room -= sum(costs[i] for i in kept)
    for index in order:
        if index not in seen and costs[index] <= room:
            kept.append(index)
            seen.add(index)
            room -= costs[index]
    return kept


def window(costs: Sequence[int], room: int, chosen: Sequence[int] = ()) -> list[int]:
    """The newest turns, back from the last, until one does not fit."""
    kept, seen = list(chosen), set(chosen)
    room -= sum(costs[i] for i in kept)
    for index in reversed(range(len(costs))):
        if index in seen:
            continue
        if costs[index] > room:
            break
        kept.append(index)
        room -= costs[index]
    return kept


def recent_window(costs: Sequence[int], room: int, ranking: Sequence[int]) -> list[int]:
    return window(costs, room)


def nearest_plus_window(costs: Sequence[int], room: int, ranking: Sequence[int]) -> list[int]:
    return window(costs, room, fill(ranking[:NEAREST_FIRST], costs, room))


def until_full(costs: Sequence[int], room: int, ranking: Sequence[int]) -> list[int]:
    return fill(ranking, costs, room)


# Each baseline: (its selection, which ranking it reads: "dense", "lexical" or none).
SELECTIONS: dict[str, tuple[Callable[[Sequence[int], int, Sequence[int]], list[int]], str]] = {
    "recent window": (recent_window, "dense"),
    "3 nearest + window": (nearest_plus_window, "dense"),
    "nearest until full": (until_full, "dense"),
    "BM25 until full": (until_full, "lexical"),
}


def baseline_prompt(system: str, turns: Sequence[StoryTurn], chosen: Iterable[int],
                    question: str) -> str:
    """The baseline's prompt text: the chosen turns in story order between the system
    prompt and the question."""
    shown = [turns[index].text for index in sorted(chosen)]
    return "\n\n".join([system, *shown, question])


def dense_rankings(turns: Sequence[StoryTurn], questions: Sequence[Question]) -> list[list[int]]:
    """Per question, every turn by MiniLM cosine similarity, nearest first (turns embedded
    once per conversation)."""
    import numpy

    from storyteller.memory.embedder import shared_embedder

    embed = shared_embedder()
    turn_vectors = numpy.asarray(embed([turn.text for turn in turns]))
    question_vectors = numpy.asarray(embed([question.text for question in questions]))
    similarity = question_vectors @ turn_vectors.T
    return [numpy.argsort(-row, kind="stable").tolist() for row in similarity]


def lexical_rankings(turns: Sequence[StoryTurn],
                     questions: Sequence[Question]) -> list[list[int]]:
    """Per question, the turns that share a word with it, best BM25 first."""
    from storyteller.memory.entries import MemoryEntry
    from storyteller.memory.lexical import LexicalIndex

    index = LexicalIndex(None)
    try:
        index.upsert(MemoryEntry(id=f"turn-{number}", kind="event", text=turn.text,
                                 turn=number, importance=3)
                     for number, turn in enumerate(turns) if turn.text)
        return [[turn for _, _, turn, _ in index.search(question.text, len(turns))]
                for question in questions]
    finally:
        index.close()


class Tokenizer:
    """The embedded narrator's tokenizer (vocabulary only, no weights)."""

    def __init__(self):
        from llama_cpp import Llama

        from storyteller.narrator.registry import embedded_model_path

        self._llm = Llama(model_path=str(embedded_model_path()), vocab_only=True, verbose=False)

    def count(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def close(self) -> None:
        self._llm.close()


def baseline_system_prompt() -> str:
    """The system prompt a new campaign on the default world is told with."""
    from storyteller.config import Settings
    from storyteller.context.prompt import system_prompt
    from storyteller.storage.worlds import World, read_world_file

    settings = Settings()
    world = World.from_toml(settings.world, read_world_file(settings, settings.world),
                            settings.world)
    return system_prompt(settings.prompts_dir, world)


def prompt_limit(n_ctx: int) -> int:
    from storyteller.config import Settings
    from storyteller.context.prompt import Budget

    return Budget(n_ctx, Settings().max_tokens).prompt_limit


# -- tallies ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Evidence utterances found / asked, by (method, n_ctx, conversation, category)."""

    counts: dict[tuple[str, int, str, int], list[int]] = field(default_factory=dict)

    def add(self, method: str, n_ctx: int, sample_id: str, category: int,
            found: list[bool]) -> None:
        cell = self.counts.setdefault((method, n_ctx, sample_id, category), [0, 0])
        cell[0] += sum(found)
        cell[1] += len(found)

    def share(self, method: str, n_ctx: int, sample_id: str,
              category: int | None = None) -> float | None:
        cells = [cell for (m, n, s, c), cell in self.counts.items()
                 if (m, n, s) == (method, n_ctx, sample_id) and category in (None, c)]
        asked = sum(cell[1] for cell in cells)
        return sum(cell[0] for cell in cells) / asked if asked else None

    def mean(self, method: str, n_ctx: int, samples: Sequence[str],
             category: int | None = None) -> float | None:
        """The mean over the conversations that have such questions."""
        shares = [share for sample in samples
                  if (share := self.share(method, n_ctx, sample, category)) is not None]
        return sum(shares) / len(shares) if shares else None


def measure_baselines(conversation: Conversation, tokenizer: Tokenizer, system: str,
                      tally: Tally) -> None:
    from storyteller.context.prompt import TURN_OVERHEAD_TOKENS

    turns, questions = conversation.turns, conversation.questions
    costs = [tokenizer.count(turn.input) + tokenizer.count(turn.output) + TURN_OVERHEAD_TOKENS
             for turn in turns]
    rankings = {"dense": dense_rankings(turns, questions),
                "lexical": lexical_rankings(turns, questions)}
    fixed = tokenizer.count(system) + 2 * TURN_OVERHEAD_TOKENS  # system and question wrappers
    for n_ctx in N_CTXS:
        for number, question in enumerate(questions):
            room = prompt_limit(n_ctx) - fixed - tokenizer.count(question.text)
            for method, (select, ranking) in SELECTIONS.items():
                chosen = select(costs, room, rankings[ranking][number])
                prompt = baseline_prompt(system, turns, chosen, question.text)
                tally.add(method, n_ctx, conversation.sample_id, question.category,
                          found_evidence(prompt, question.evidence))


# -- storyteller, through its commands ----------------------------------------------------------


class Unavailable(Exception):
    """Storyteller's column cannot be measured; the message says why."""


def not_available(returncode: int, stderr: str) -> bool:
    """argparse's answer to a subcommand or flag it does not have."""
    return returncode == 2 and ("usage:" in stderr or "invalid choice" in stderr)


def storyteller(*args: str, cwd: Path = ROOT) -> str:
    """Run `python -m storyteller ARGS` from the project; its stdout, or Unavailable."""
    env = {**os.environ, **_OFFLINE, "PYTHONPATH": str(cwd)}
    command = [sys.executable, "-m", "storyteller", *args]
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"`storyteller {args[0]}` took over {COMMAND_TIMEOUT_S} s") from None
    if not_available(done.returncode, done.stderr):
        raise Unavailable(f"`storyteller {args[0]}` is not available on this branch")
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        raise Unavailable(f"`storyteller {args[0]}` failed ({lines[-1][:200]})")
    return done.stdout


def storyteller_answers(conversation: Conversation, folder: Path, cwd: Path = ROOT,
                        ) -> dict[int, list[dict]]:
    """Import the conversation once, then each n_ctx's prompts: {n_ctx: one JSON record
    per question, in order}."""
    story = folder / f"{conversation.sample_id}.jsonl"
    story.write_text("".join(turn.to_json() + "\n" for turn in conversation.turns),
                     encoding="utf-8")
    asked = folder / f"{conversation.sample_id}-questions.txt"
    asked.write_text("".join(q.text + "\n" for q in conversation.questions), encoding="utf-8")
    campaign = f"locomo-{conversation.sample_id}"
    saves = folder / "saves"
    storyteller("import", "--campaign", campaign, "--saves-dir", str(saves), str(story),
                cwd=cwd)
    answers = {}
    for n_ctx in N_CTXS:
        output = storyteller("prompt", "--campaign", campaign, "--saves-dir", str(saves),
                             "--n-ctx", str(n_ctx), "--json", "--file", str(asked), cwd=cwd)
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        if len(records) != len(conversation.questions):
            raise Unavailable(f"`storyteller prompt` answered {len(records)} of "
                              f"{len(conversation.questions)} questions")
        answers[n_ctx] = records
    return answers


@dataclass
class PromptFigures:
    """Storyteller's prompts at one n_ctx, over every conversation."""

    prompt_tokens: list[int] = field(default_factory=list)
    evaluated_tokens: list[int] = field(default_factory=list)
    recent_kept: list[bool] = field(default_factory=list)


def measure_storyteller(conversation: Conversation, answers: dict[int, list[dict]],
                        tally: Tally, figures: dict[int, PromptFigures]) -> None:
    # The prompt holds a turn as two messages (the input, then the narration).
    recent = [part for turn in conversation.turns[-RECENT_KEPT:]
              for part in (turn.input, turn.output) if part]
    for n_ctx, records in answers.items():
        kept = figures.setdefault(n_ctx, PromptFigures())
        for question, record in zip(conversation.questions, records, strict=True):
            tally.add(STORYTELLER, n_ctx, conversation.sample_id, question.category,
                      found_evidence(record["prompt"], question.evidence))
            kept.prompt_tokens.append(int(record["prompt_tokens"]))
            kept.evaluated_tokens.append(int(record["evaluated_tokens"]))
            kept.recent_kept.append(all(found_evidence(record["prompt"], recent)))


# -- the run --------------------------------------------------------------------------------


def run(data: Path = DATA_FILE) -> str:
    started = time.perf_counter()
    if not data.is_file():
        return f"## LoCoMo evidence recall\n\nNot measured: {data} is missing."
    conversations = read_conversations(data)
    tally = Tally()
    figures: dict[int, PromptFigures] = {}
    unavailable = None
    tokenizer = Tokenizer()
    system = baseline_system_prompt()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-locomo-") as folder:
            for conversation in conversations:
                print(f"locomo: {conversation.sample_id}: {len(conversation.turns)} turns, "
                      f"{len(conversation.questions)} questions", flush=True)
                measure_baselines(conversation, tokenizer, system, tally)
                if unavailable is None:
                    try:
                        answers = storyteller_answers(conversation, Path(folder))
                        measure_storyteller(conversation, answers, tally, figures)
                    except Unavailable as reason:
                        unavailable = str(reason)
    finally:
        tokenizer.close()
    if unavailable is not None:
        tally.counts = {key: cell for key, cell in tally.counts.items()
                        if key[0] != STORYTELLER}
        figures = {}
    return report(conversations, tally, figures, unavailable,
                  (time.perf_counter() - started) / 60)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def report(conversations: Sequence[Conversation], tally: Tally,
           figures: dict[int, PromptFigures], unavailable: str | None, minutes: float) -> str:
    samples = [conversation.sample_id for conversation in conversations]
    asked = sum(len(conversation.questions) for conversation in conversations)
    evidence = sum(len(q.evidence) for c in conversations for q in c.questions)
    by_category, by_conversation = [], []
    for n_ctx in N_CTXS:
        for method in METHODS:
            label = f"**{method}**" if method == STORYTELLER else method
            by_category.append([n_ctx, label] + [
                _percent(tally.mean(method, n_ctx, samples, category)) for category in CATEGORIES]
                + [f"**{_percent(tally.mean(method, n_ctx, samples))}**"])
            by_conversation.append([n_ctx, label] + [
                _percent(tally.share(method, n_ctx, sample)) for sample in samples]
                + [_percent(tally.mean(method, n_ctx, samples))])
    lines = [
        "## LoCoMo: the needed utterance in the prompt",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {len(conversations)} LoCoMo "
        f"conversations ({', '.join(samples)}; "
        f"{', '.join(str(len(c.turns)) for c in conversations)} turns), {asked} questions "
        f"of categories 1-4 naming {evidence} evidence utterances. A conversation is "
        "imported as a story (each utterance of the first speaker with the second "
        "speaker's reply is one turn; a session's date in front of its first line); an "
        "evidence utterance counts as found when its whole text is in the prompt (after "
        "folding whitespace and case). Baselines fill the same budget (the prompt limit "
        "minus the system prompt and the question) counted with the embedded SmolLM2 "
        "tokenizer; nearest = all-MiniLM-L6-v2 cosine, BM25 = SQLite FTS5. Shares are "
        "the mean over the conversations (a category: over those that have it).",
        "",
    ]
    if unavailable is not None:
        lines += [f"Storyteller: n/a ({unavailable}).", ""]
    lines += [table(["n_ctx", "memory", *CATEGORIES.values(), "all"], by_category), "",
              "Per conversation (all categories):", "",
              table(["n_ctx", "memory", *samples, "mean"], by_conversation), ""]
    if figures:
        rows = [[n_ctx, f"{percentile(kept.prompt_tokens, 0.5):.0f} / {prompt_limit(n_ctx)}",
                 f"{percentile(kept.prompt_tokens, 0.95):.0f}",
                 f"{percentile(kept.evaluated_tokens, 0.5):.0f}",
                 f"{percentile(kept.evaluated_tokens, 0.95):.0f}",
                 _percent(sum(kept.recent_kept) / len(kept.recent_kept))]
                for n_ctx, kept in sorted(figures.items())]
        lines += ["Storyteller's prompts (`storyteller prompt --file`, the questions asked in "
                  "order, each after the previous one):", "",
                  table(["n_ctx", "prompt tokens p50 / limit", "p95", "evaluated tokens p50",
                         "p95", f"last {RECENT_KEPT} turns in prompt"], rows), ""]
    lines.append(f"Run time: {minutes:.1f} min.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
