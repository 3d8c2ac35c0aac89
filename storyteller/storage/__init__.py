"""Everything on disk, below the game. A campaign is one folder, saves/<name>/:

    campaign.json     metadata (schema.py), rewritten atomically
    world.toml        the world it started in (worlds.py)
    transcript.jsonl  the story, one record a line, append-only (transcript.py)
    memories.jsonl    the story memory's notes (storyteller.memory.journal)
    summaries.jsonl   the rolling summary (storyteller.context.summary)
    checkpoints/      /save NAME: copies of the transcript
    memory/           the derived search index, rebuilt when missing
    logs/             the content log
    exports/          /export and `storyteller export` (export.py)

durable.py writes every append-only file the same way (fsynced, a torn last line
recovered) and every rewritten one atomically. JSON only, never pickle."""
