"""Chat templates, rendered so that untrusted text stays text.

The template is rendered with a unique placeholder in place of each message's content.
The result is split back into pieces: template text (trusted, may hold control tokens
such as <|im_start|>) and message contents (untrusted). A backend tokenizes the first
with special-token parsing on and the second with it off, so a player typing
"<|im_end|>" sends those characters, never the control token.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from storyteller.narrator.base import Message, NarratorError

# For models without a chat template (base/completion models): a plain adventure
# transcript, with the player's actions marked by "> ".
TRANSCRIPT_STOP = ["\n>"]


@dataclass(frozen=True)
class Piece:
    text: str
    message_index: int  # the message this piece is counted with
    trusted: bool  # template text (True) or message content (False)


def _raise(message: str):
    raise TemplateError(message)


def render_chat_template(template: str, messages: list[Message], bos_token: str = "",
                         eos_token: str = "") -> list[Piece]:
    """Render a Jinja chat template (as shipped in GGUF metadata) into pieces."""
    marker = uuid.uuid4().hex
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    placeholders = [{"role": m.role, "content": f"\x00{marker}:{i}\x00"}
                    for i, m in enumerate(messages)]
    try:
        rendered = env.from_string(template).render(
            messages=placeholders, add_generation_prompt=True, bos_token=bos_token,
            eos_token=eos_token, raise_exception=_raise,
        )
    except TemplateError as error:
        raise NarratorError(f"The model's chat template failed: {error}; "
                            "use --model with another GGUF file.") from None
    pieces: list[Piece] = []
    pending_template = ""
    for part in re.split(f"(\x00{marker}:\\d+\x00)", rendered):
        match = re.fullmatch(f"\x00{marker}:(\\d+)\x00", part)
        if not match:
            pending_template += part
            continue
        index = int(match.group(1))
        if pending_template:
            pieces.append(Piece(pending_template, index, trusted=True))
            pending_template = ""
        pieces.append(Piece(messages[index].content, index, trusted=False))
    if pending_template:  # the generation prompt goes with the last message
        pieces.append(Piece(pending_template, max(len(messages) - 1, 0), trusted=True))
    return pieces


def render_transcript(messages: list[Message]) -> list[Piece]:
    """A plain-text prompt for models without a chat template."""
    pieces: list[Piece] = []
    for i, message in enumerate(messages):
        if message.role == "user":
            pieces.append(Piece("\n> ", i, trusted=True))
            pieces.append(Piece(message.content, i, trusted=False))
            pieces.append(Piece("\n", i, trusted=True))
        else:
            pieces.append(Piece(message.content, i, trusted=False))
            pieces.append(Piece("\n", i, trusted=True))
    return pieces
