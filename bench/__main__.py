print("no benchmarks yet: they arrive with the benchmarks issue.")
