"""The errors a player or a script can see. Each message is one line that says what to do.

They are sorted by what went wrong, not by the module that noticed: the command line and
the terminal app catch StorytellerError and show its message."""

from __future__ import annotations


class StorytellerError(Exception):
    """A problem the player can fix; the message is one line and says how."""


class SaveError(StorytellerError):
    """A campaign folder, a save file or a name in it: missing, unreadable, unwritable."""


class WorldError(StorytellerError):
    """A world file (or a lorebook or character card to import) that cannot be used."""


class ModelError(StorytellerError):
    """A narrator model that cannot be found, loaded or reached, or that failed."""


class MemoryIndexError(StorytellerError):
    """The story memory's search index (or the embedding model) cannot be used."""


class CampaignBusyError(SaveError):
    """The campaign is open in another storyteller process."""
