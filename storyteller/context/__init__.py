"""What the model is given each turn: sections, token budget, prompt rendering."""
