"""Models saved by earlier code still load and act identically.

- ``*_lsp_v0_1_0``: saved by release 0.1.0 (commit 9d19f86, before the flow options) on
  Pendulum-v1 (SAC and TQC, ``net_arch=[16, 16]``, ``embedding_net_arch=[16]``, 100 steps).
- ``sac_lsp_gaussian_start_unprojected``: the default flow before ``context_projection`` (commit
  81f8970: separate first layers in each coupling network) on ``sb3_lsp/MultiGoal-v0`` (2-D actions,
  so both couplings act), ``net_arch=[16, 16]``, ``embedding_net_arch=[16]``, ``embedding_dim=16``,
  100 steps with ``learning_starts=50`` (its identity-started couplings have moved).

Each was saved without its replay buffer, with what it computed then: deterministic ``predict``,
``log_prob`` of given actions and ``latent_to_action`` of given latents.
"""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import TQC
from stable_baselines3 import SAC

import sb3_lsp  # noqa: F401  (registers the policies the zips name)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("name", "algo"),
    [("sac_lsp_v0_1_0", SAC), ("tqc_lsp_v0_1_0", TQC), ("sac_lsp_gaussian_start_unprojected", SAC)],
)
def test_saved_model_loads_and_acts_identically(name: str, algo: type) -> None:
    model = algo.load(FIXTURES / f"{name}.zip")
    expected = np.load(FIXTURES / f"{name}_expected.npz")
    deterministic, _ = model.predict(expected["obs"], deterministic=True)
    obs = th.as_tensor(expected["obs"])
    with th.no_grad():
        log_prob = model.actor.log_prob(obs, th.as_tensor(expected["actions"])).numpy()
        latent_actions = model.actor.latent_to_action(obs, th.as_tensor(expected["latents"])).numpy()
    np.testing.assert_allclose(deterministic, expected["deterministic"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(log_prob, expected["log_prob"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(latent_actions, expected["latent_actions"], rtol=0, atol=1e-6)


def test_the_unprojected_default_flow_loads_as_saved_and_keeps_training() -> None:
    """A model of the default flow saved before context_projection keeps its layout (and its optimizer) on load."""
    model = SAC.load(FIXTURES / "sac_lsp_gaussian_start_unprojected.zip")
    assert not model.actor.context_projection and model.actor.gaussian_base
    assert {id(p) for p in model.actor.optimizer.param_groups[0]["params"]} == {id(p) for p in model.actor.parameters()}
    assert not model.actor.optimizer.param_groups[0]["fused"]  # its saved Adam, not this release's fused default
    model.set_env(gym.make("sb3_lsp/MultiGoal-v0"))
    model.learn(60, reset_num_timesteps=False)  # learning_starts passed: these are gradient steps on the old layout
    assert all(th.isfinite(p).all() for p in model.actor.parameters())
