import os

# Ray's driver folds worker lines that differ only in their numbers into "[repeated Nx across
# cluster]", which hides most of the runs' progress lines (one per evaluation: step and return).
# Ray reads the setting when it is imported, so it is set here, before benchmarks.run imports ray.
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
