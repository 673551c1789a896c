import pytest
import torch as th


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    th.manual_seed(0)
