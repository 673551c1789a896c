"""Fault injection: bad numbers fail loudly, where they enter, before anything trained is spoiled."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC

import sb3_lsp  # noqa: F401  (registers the policy names)

ALGOS = {"sac": SAC, "tqc": TQC}


class NanAfter(gym.Wrapper):
    """Pendulum whose observation turns NaN at step ``nan_step`` (a sensor fault)."""

    def __init__(self, nan_step: int) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.nan_step, self.steps = nan_step, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.steps == self.nan_step:
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("algo", ALGOS)
def test_a_nan_observation_raises_and_leaves_every_weight_finite(algo: str) -> None:
    model = ALGOS[algo]("LSPPolicy", NanAfter(nan_step=30), learning_starts=10, batch_size=8, seed=0)
    with pytest.raises(ValueError, match="non-finite observation"):
        model.learn(100)
    for name, param in model.policy.named_parameters():
        assert th.isfinite(param).all(), name
    with pytest.raises(ValueError, match=r"non-finite observation \(NaN or inf\) at batch row\(s\) \[1\]"):
        model.predict(np.array([[0.0, 1.0, 0.0], [np.inf, 0.0, 0.0]], np.float32))
    action, _ = model.predict(np.array([0.0, 1.0, 0.0], np.float32))
    assert np.isfinite(action).all()


def test_every_actor_entry_point_refuses_non_finite_observations() -> None:
    actor = SAC("LSPPolicy", "Pendulum-v1").actor
    bad = th.tensor([[0.0, 1.0, 0.0], [0.0, float("nan"), 0.0]])
    calls = {
        "forward": lambda: actor(bad),
        "action_log_prob": lambda: actor.action_log_prob(bad),
        "log_prob": lambda: actor.log_prob(bad, th.zeros(2, 1)),
        "latent_to_action": lambda: actor.latent_to_action(bad, th.zeros(2, 1)),
        "action_to_latent": lambda: actor.action_to_latent(bad, th.zeros(2, 1)),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match="non-finite observation"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_scale_bound": float("inf")}, "log_scale_bound must be a finite positive number"),
        ({"log_scale_bound": float("nan")}, "log_scale_bound must be a finite positive number"),
        ({"log_scale_bound": "5"}, "in YAML write numbers with a dot"),
    ],
)
def test_invalid_flow_numbers_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SAC("LSPPolicy", "Pendulum-v1", policy_kwargs=kwargs)


def test_numpy_scalars_are_valid_flow_settings() -> None:
    kwargs = dict(coupling_net_arch=[np.int64(4)], n_coupling_layers=np.int32(3), log_scale_bound=np.float32(2.0))
    actor = SAC("LSPPolicy", "Pendulum-v1", policy_kwargs=kwargs).actor
    assert actor.coupling_net_arch == [4] and actor.n_coupling_layers == 3 and actor.log_scale_bound == 2.0
    assert spaces.Box(-1, 1, (1,)).contains(actor(th.zeros(1, 3)).detach().numpy()[0])
