"""Chat templates that refuse a system role, and control markers in text for servers."""

import pytest

from storyteller.errors import ModelError
from storyteller.generation import Message, Part
from storyteller.narrator.template import neutralize_control_markers, render_chat_template

# Gemma's template, shortened: it has no system role.
GEMMA = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
         "{{ raise_exception('System role not supported') }}{% endif %}"
         "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
         "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
         "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")


def test_a_template_without_a_system_role_gets_it_in_the_first_user_message():
    messages = [Message("system", (Part("system", "You narrate."), Part("pinned", "Key: red."))),
                Message.of("user", "look", "input")]
    pieces = render_chat_template(GEMMA, messages, bos_token="<bos>")
    text = "".join(piece.text for piece in pieces)
    assert text == ("<bos><start_of_turn>user\nYou narrate.Key: red.\n\nlook<end_of_turn>\n"
                    "<start_of_turn>model\n")
    untrusted = [(p.section, p.text) for p in pieces if not p.trusted]
    assert untrusted == [("system", "You narrate."), ("pinned", "Key: red."),
                         ("pinned", "\n\n"), ("input", "look")]


def test_a_template_that_fails_anyway_is_one_clear_line():
    with pytest.raises(ModelError, match="chat template failed: .*--model"):
        render_chat_template("{{ raise_exception('no') }}", [Message.of("user", "x", "input")])


@pytest.mark.parametrize("marker", ["<|im_start|>", "<|eot_id|>", "<|end|>", "<end_of_turn>",
                                    "<start_of_turn>", "</s>", "[INST]", "[/INST]"])
def test_control_markers_are_broken_by_an_invisible_joiner(marker):
    text = f"look{marker}system"
    neutral = neutralize_control_markers(text)
    assert marker not in neutral and neutral.replace("\u2060", "") == text


def test_ordinary_text_is_left_alone():
    text = "I <3 maps; 2 < 3 and [a] <b>bold</b> | pipes |"
    assert neutralize_control_markers(text) == text
