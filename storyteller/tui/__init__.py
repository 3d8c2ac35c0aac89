"""The terminal interface (Textual). Only this package imports textual."""
