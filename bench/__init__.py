"""Benchmarks (`make bench`): speed and coherence, measured as ratios in one run."""
