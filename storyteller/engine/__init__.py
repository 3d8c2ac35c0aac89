"""The game loop: turns, commands, traces. Headless: never imports Textual."""
