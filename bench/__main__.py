"""`make bench` / `python -m bench`: every benchmark, as one markdown report."""

from bench import retrieval

if __name__ == "__main__":
    print(retrieval.run())
