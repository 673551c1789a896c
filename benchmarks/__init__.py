import os

# Ray's driver folds worker lines that differ only in their numbers into "[repeated Nx across
# cluster]", which hides most of the runs' progress lines (one per evaluation: step and return).
# Ray reads the setting when it is imported, so it is set here, before benchmarks.run imports ray.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# Ray starts its workers at nice 15 (its `worker_niceness`), so a grid's runs got almost no CPU
# beside any other job at normal priority (a test suite, another harness): their steps/s measured
# the neighbours, and timed grids starved. Runs take the harness's own priority instead (`nice
# python -m benchmarks.run ...` still lowers them). It applies to the Ray instance the harness
# starts; the nodes of a cluster (`--address`) keep what their `ray start` was given.
os.environ.setdefault("RAY_worker_niceness", "0")
