import os

import pytest
import torch as th

if "PYTEST_XDIST_WORKER" in os.environ:
    # One pytest-xdist worker per core: a worker (and the CLIs it starts, which inherit the
    # variable) using every core for torch's intra-op threads would oversubscribe them several-fold.
    th.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: started last, one of them would run on alone while the other workers idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    th.manual_seed(0)
