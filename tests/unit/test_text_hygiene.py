from storyteller.text import clean_player_input


def test_control_characters_and_ansi_escapes_are_removed():
    text, notice = clean_player_input("\x1b[31mopen\x1b[0m the\x00 door\x07\r\n now\t!", 100)
    assert text == "open the door now !"
    assert notice is None


def test_long_input_is_cut_at_a_word_boundary_with_a_notice():
    text, notice = clean_player_input("walk " * 20_000, 2000)
    assert len(text) <= 2000
    assert text.endswith("walk")
    assert "99,999 characters" in notice  # after trimming the last space


def test_unicode_is_kept():
    assert clean_player_input("  greet Ærwyn 🐉 ", 100) == ("greet Ærwyn 🐉", None)
