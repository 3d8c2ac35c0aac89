"""Chat templates, rendered so that untrusted text stays text.

The template is rendered with a unique placeholder in place of each message's content.
The result is split back into pieces: template text (trusted, may hold control tokens
such as <|im_start|>) and message contents (untrusted), one piece per part of a message.
A backend tokenizes the first with special-token parsing on and the second with it off,
so a player typing "<|im_end|>" sends those characters, never the control token. Each
piece carries its prompt section, so every token is counted in exactly one section.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from storyteller.errors import ModelError
from storyteller.generation import Message, Part, RenderedPrompt

# For models without a chat template (base/completion models): a plain adventure
# transcript, with the player's actions marked by "> ".
TRANSCRIPT_STOP = ["\n>"]


def reached_stop(text: str, stops: list[str]) -> bool:
    """Whether the answer so far ends in (or just passed) a stop sequence."""
    return any(stop in text[-16:] for stop in stops)


@dataclass(frozen=True)
class Piece:
    text: str
    section: str  # the section this piece is counted in
    trusted: bool  # template text (True) or message content (False)


def _raise(message: str):
    raise TemplateError(message)


def _content_pieces(message: Message) -> list[Piece]:
    return [Piece(part.text, part.section, trusted=False) for part in message.parts if part.text]


def render_chat_template(template: str, messages: list[Message], bos_token: str = "",
                         eos_token: str = "") -> list[Piece]:
    """Render a Jinja chat template (as shipped in GGUF metadata) into pieces. Template
    text is counted with the section of the content that follows it. A template that
    refuses the system role (Gemma's) gets the system text at the top of the first user
    message instead."""
    try:
        return _render_pieces(template, messages, bos_token, eos_token)
    except TemplateError as error:
        folded = fold_system_message(messages)
        try:
            return _render_pieces(template, folded, bos_token, eos_token)
        except TemplateError:
            raise ModelError(f"The model's chat template failed: {error}; "
                                "use --model with another model.") from None


def fold_system_message(messages: list[Message]) -> list[Message]:
    if len(messages) < 2 or messages[0].role != "system" or messages[1].role != "user":
        return messages
    system, user = messages[0], messages[1]
    separator = Part(system.parts[-1].section, "\n\n")
    return [Message("user", (*system.parts, separator, *user.parts)), *messages[2:]]


def _render_pieces(template: str, messages: list[Message], bos_token: str,
                   eos_token: str) -> list[Piece]:
    marker = uuid.uuid4().hex
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    placeholders = [{"role": m.role, "content": f"\x00{marker}:{i}\x00"}
                    for i, m in enumerate(messages)]
    rendered = env.from_string(template).render(
        messages=placeholders, add_generation_prompt=True, bos_token=bos_token,
        eos_token=eos_token, raise_exception=_raise,
    )
    pieces: list[Piece] = []
    pending_template = ""
    for part in re.split(f"(\x00{marker}:\\d+\x00)", rendered):
        match = re.fullmatch(f"\x00{marker}:(\\d+)\x00", part)
        if not match:
            pending_template += part
            continue
        message = messages[int(match.group(1))]
        content = _content_pieces(message)
        if pending_template:
            pieces.append(Piece(pending_template, message.parts[0].section, trusted=True))
            pending_template = ""
        pieces.extend(content)
    if pending_template:  # the generation prompt goes with the last section
        section = messages[-1].parts[-1].section if messages else "input"
        pieces.append(Piece(pending_template, section, trusted=True))
    return pieces


def render_transcript(messages: list[Message]) -> list[Piece]:
    """A plain-text prompt for models without a chat template."""
    pieces: list[Piece] = []
    for message in messages:
        content = _content_pieces(message)
        last_section = message.parts[-1].section
        if message.role == "user":
            pieces.append(Piece("\n> ", message.parts[0].section, trusted=True))
        pieces.extend(content)
        pieces.append(Piece("\n", last_section, trusted=True))
    return pieces


def tokenize_pieces(messages: list[Message], pieces: list[Piece],
                    tokenize: Callable[[Piece, bool], list[int]]) -> RenderedPrompt:
    """The prompt from its pieces, each tokenized by tokenize(piece, is_first), which
    must parse control tokens in trusted pieces only."""
    tokens: list[int] = []
    counts: list[int] = []
    for i, piece in enumerate(pieces):
        piece_tokens = tokenize(piece, i == 0)
        tokens.extend(piece_tokens)
        counts.append(len(piece_tokens))
    text = "".join(piece.text for piece in pieces)
    return RenderedPrompt(messages, text, tokens, sum_sections(pieces, counts))


def sum_sections(pieces: list[Piece], counts: list[int]) -> dict[str, int]:
    """Tokens per section, in the order sections first appear in the prompt."""
    totals: dict[str, int] = {}
    for piece, count in zip(pieces, counts, strict=True):
        totals[piece.section] = totals.get(piece.section, 0) + count
    return totals


# Control-token markers of the common chat templates (ChatML, Llama 3, Phi-3, Gemma,
# Mistral). Text sent to a server, which applies its own template, gets a word joiner
# (U+2060, invisible) inside each marker, so no tokenizer can read it as a control token.
CONTROL_MARKER = re.compile(
    r"<\|[A-Za-z0-9_]+\|>|</?(?:start_of_turn|end_of_turn|s|bos|eos)>|\[/?INST\]"
    r"|\[/?SYSTEM_PROMPT\]")
WORD_JOINER = "\u2060"


def neutralize_control_markers(text: str) -> str:
    return CONTROL_MARKER.sub(lambda match: match.group(0)[0] + WORD_JOINER + match.group(0)[1:],
                              text)
