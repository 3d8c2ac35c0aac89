"""The story memory: what a campaign remembers and how each turn recalls it.

    entries.py   memory entries (character, location, item, plot, event, summary)
    journal.py   memories.jsonl: extracted facts, pins and forgets, append-only
    embedder.py  all-MiniLM-L6-v2 as a Chroma embedding function (lazy, one per process)
    store.py     the Chroma index: embedded in the campaign folder, or a server
    extract.py   facts from each turn, by a model constrained to a JSON schema
    retrieve.py  keyword activation, vector search, scoring, fitting a token cap
    story.py     StoryMemory: writes after a turn (in the background), recalls before one
    reindex.py   `storyteller reindex`

chromadb, sentence-transformers and torch are imported only when a memory opens.
"""
