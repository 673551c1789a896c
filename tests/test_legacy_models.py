"""Models saved by release 0.1.0 (commit 9d19f86, before the flow options) still load and act identically.

The fixtures were saved by that release on Pendulum-v1 (SAC and TQC, ``net_arch=[16, 16]``,
``embedding_net_arch=[16]``, 100 steps, no replay buffer), together with what they computed then:
deterministic ``predict``, ``log_prob`` of given actions and ``latent_to_action`` of given latents.
"""

from pathlib import Path

import numpy as np
import pytest
import torch as th
from sb3_contrib import TQC
from stable_baselines3 import SAC

import sb3_lsp  # noqa: F401  (registers the policies the zips name)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(("name", "algo"), [("sac", SAC), ("tqc", TQC)])
def test_release_0_1_0_model_loads_and_acts_identically(name: str, algo: type) -> None:
    model = algo.load(FIXTURES / f"{name}_lsp_v0_1_0.zip")
    expected = np.load(FIXTURES / f"{name}_lsp_v0_1_0_expected.npz")
    deterministic, _ = model.predict(expected["obs"], deterministic=True)
    obs = th.as_tensor(expected["obs"])
    with th.no_grad():
        log_prob = model.actor.log_prob(obs, th.as_tensor(expected["actions"])).numpy()
        latent_actions = model.actor.latent_to_action(obs, th.as_tensor(expected["latents"])).numpy()
    np.testing.assert_allclose(deterministic, expected["deterministic"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(log_prob, expected["log_prob"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(latent_actions, expected["latent_actions"], rtol=0, atol=1e-6)
