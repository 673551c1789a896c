"""LatentActionWrapper and HierarchicalPolicy: exact maps, repeat semantics, stacking, errors, lockstep."""

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_lsp import HierarchicalPolicy, LatentActionWrapper


class RecordActions(gym.Wrapper):
    """Remembers every action the environment receives."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action))
        return self.env.step(action)


class EndsAfter(gym.Env):
    """A point on a line, 4-D observation; terminates after `length` steps; reward = step index."""

    observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, length: int = 5) -> None:
        self.length = length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.normal(size=4).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.concatenate([action, [self.t, 0.0]]).astype(np.float32)
        return obs, float(self.t), self.t >= self.length, False, {}


def lsp_model(env, seed: int = 0) -> SAC:
    """An untrained SAC + LSPPolicy: a valid latent-space level with random weights."""
    return SAC("LSPPolicy", env, seed=seed, learning_starts=10)


@pytest.fixture(scope="module")
def pendulum_level0(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("levels") / "level0.zip"
    model = lsp_model("Pendulum-v1")
    model.learn(60)  # a few updates so the weights are not the initial ones
    model.save(path)
    return path


def squashed(model: SAC, obs: np.ndarray, latent: np.ndarray) -> np.ndarray:
    with th.no_grad():
        return model.actor.latent_to_action(th.as_tensor(obs[None]), th.as_tensor(latent[None])).numpy()[0]


def test_wrapper_applies_exactly_the_lower_levels_map_rescaled(pendulum_level0: Path) -> None:
    inner = RecordActions(gym.make("Pendulum-v1"))
    env = LatentActionWrapper(inner, pendulum_level0, action_prior="uniform")
    lower = SAC.load(pendulum_level0)
    obs, _ = env.reset(seed=0)
    assert env.action_space == spaces.Box(-3.0, 3.0, (1,), np.float32)
    rng = np.random.default_rng(0)
    for _ in range(20):
        latent = rng.uniform(-3, 3, size=1).astype(np.float32)
        expected = 2.0 * squashed(lower, obs, latent)  # Pendulum's box is [-2, 2]
        obs, *_ = env.step(latent)
        np.testing.assert_allclose(inner.actions[-1], expected, rtol=1e-6, atol=1e-6)


def test_any_inner_action_is_reachable_through_the_wrapper(pendulum_level0: Path) -> None:
    inner = RecordActions(gym.make("Pendulum-v1"))
    env = LatentActionWrapper(inner, pendulum_level0, latent_bound=50.0)
    lower = SAC.load(pendulum_level0)
    obs, _ = env.reset(seed=1)
    for target in (-1.9, -0.5, 0.0, 0.7, 1.5):
        with th.no_grad():
            latent = lower.actor.action_to_latent(th.as_tensor(obs[None]), th.tensor([[target / 2.0]])).numpy()[0]
        obs, *_ = env.step(latent)
        np.testing.assert_allclose(inner.actions[-1], [target], atol=1e-4)


def test_action_repeat_holds_the_latent_closed_loop_and_sums_rewards() -> None:
    lower = lsp_model(EndsAfter(length=100))
    inner = RecordActions(EndsAfter(length=100))
    env = LatentActionWrapper(inner, lower, action_repeat=3, action_prior="uniform")
    obs, _ = env.reset(seed=0)
    latent = np.array([0.5, -1.0], np.float32)
    _, reward, terminated, truncated, info = env.step(latent)
    assert info["inner_steps"] == 3 and len(inner.actions) == 3
    assert reward == pytest.approx(1.0 + 2.0 + 3.0)
    assert not (terminated or truncated)
    # Closed loop: the lower level re-reads each new observation (the inner env feeds back its action).
    reference_obs = obs
    for t, recorded in enumerate(inner.actions, start=1):
        np.testing.assert_allclose(recorded, squashed(lower, reference_obs, latent), atol=1e-6)
        reference_obs = np.concatenate([recorded, [t, 0.0]]).astype(np.float32)  # what EndsAfter returned
    assert not np.allclose(inner.actions[0], inner.actions[1])


def test_action_repeat_stops_early_on_termination_and_truncation() -> None:
    env = LatentActionWrapper(EndsAfter(length=5), lsp_model(EndsAfter()), action_repeat=3, action_prior="uniform")
    env.reset(seed=0)
    *_, info = env.step(env.action_space.sample())
    assert info["inner_steps"] == 3
    _, reward, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and info["inner_steps"] == 2 and reward == pytest.approx(4.0 + 5.0)

    truncating = LatentActionWrapper(gym.make("Pendulum-v1", max_episode_steps=7), lsp_model("Pendulum-v1"), action_repeat=3)
    truncating.reset(seed=0)
    counts = []
    truncated = False
    while not truncated:
        *_, truncated, info = truncating.step(truncating.action_space.sample())
        counts.append(info["inner_steps"])
    assert counts == [3, 3, 1]


def test_gaussian_prior_adds_the_log_density_of_the_latent(pendulum_level0: Path) -> None:
    rewards = {}
    latent = np.array([1.7], np.float32)
    for prior in ("gaussian", "uniform"):
        env = LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, action_prior=prior, prior_coef=0.3)
        env.reset(seed=5)
        _, rewards[prior], *_, info = env.step(latent)
    assert rewards["gaussian"] - rewards["uniform"] == pytest.approx(-0.5 * 0.3 * 1.7**2, rel=1e-6)
    assert info.get("prior_reward") is None  # uniform adds nothing


def test_lower_obs_gives_the_lower_level_the_first_entries() -> None:
    lower = SAC("LSPPolicy", gym.make("Pendulum-v1"), seed=3)  # 3-D observations
    wide = gym.wrappers.TransformObservation(
        gym.make("Pendulum-v1"),
        lambda obs: np.concatenate([obs, [7.0, -7.0]]).astype(np.float32),
        spaces.Box(-np.inf, np.inf, (5,), np.float32),
    )
    inner = RecordActions(wide)
    env = LatentActionWrapper(inner, lower, lower_obs=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,)
    env.step(np.array([0.4], np.float32))
    np.testing.assert_allclose(inner.actions[-1], 2.0 * squashed(lower, obs[:3], np.array([0.4], np.float32)), atol=1e-6)


def test_both_env_checkers_pass(pendulum_level0: Path) -> None:
    env = LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, action_repeat=2)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, action_repeat=2))


def make_three_levels(tmp_path: Path) -> tuple[list, list[dict]]:
    wrappers = [{"action_repeat": 2, "latent_bound": 2.5}, {"action_repeat": 3}]
    level0 = lsp_model("Pendulum-v1", seed=0)
    level0.learn(60)
    level0.save(tmp_path / "level0.zip")
    env1 = LatentActionWrapper(gym.make("Pendulum-v1"), tmp_path / "level0.zip", **wrappers[0])
    level1 = lsp_model(env1, seed=1)
    level1.learn(60)
    level1.save(tmp_path / "level1.zip")
    env2 = LatentActionWrapper(env1, tmp_path / "level1.zip", **wrappers[1])
    level2 = SAC("LSPPolicy", env2, seed=2, learning_starts=50)
    level2.learn(300)  # the 3-level stack trains
    level2.save(tmp_path / "level2.zip")
    return [tmp_path / "level0.zip", tmp_path / "level1.zip", tmp_path / "level2.zip"], wrappers


def test_three_level_hierarchy_steps_in_lockstep_with_the_wrapped_env(tmp_path: Path) -> None:
    levels, wrappers = make_three_levels(tmp_path)
    raw_recorder = RecordActions(gym.make("Pendulum-v1"))
    stacked = LatentActionWrapper(LatentActionWrapper(raw_recorder, levels[0], **wrappers[0]), levels[1], **wrappers[1])
    top = SAC.load(levels[2])
    obs, _ = stacked.reset(seed=11)
    for _ in range(10):  # 10 top-level steps = 60 raw steps
        obs, *_ = stacked.step(top.predict(obs, deterministic=True)[0])

    policy = HierarchicalPolicy.from_levels(levels, wrappers)
    raw_env = gym.make("Pendulum-v1")
    raw_obs, _ = raw_env.reset(seed=11)
    state = None
    for step, expected_action in enumerate(raw_recorder.actions):
        action, state = policy.predict(raw_obs, state=state, episode_start=np.array([step == 0]), deterministic=True)
        np.testing.assert_allclose(action, expected_action, atol=1e-5, err_msg=f"raw step {step}")
        raw_obs, *_ = raw_env.step(action)
    np.testing.assert_allclose(raw_obs, obs, atol=1e-4)

    # The archive restores identical behaviour in a fresh process.
    policy.save(tmp_path / "hierarchy.zip")
    probe_obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "probe.npy", probe_obs)
    script = (
        "import sys, numpy as np; from sb3_lsp import HierarchicalPolicy; "
        "p = HierarchicalPolicy.load(sys.argv[1]); obs = np.load(sys.argv[2]); state = None; out = []\n"
        "for _ in range(7):\n"
        "    a, state = p.predict(obs, state=state, deterministic=True); out.append(a)\n"
        "np.save(sys.argv[3], np.stack(out))"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "hierarchy.zip"),
            str(tmp_path / "probe.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
    )
    state, expected = None, []
    for _ in range(7):
        action, state = policy.predict(probe_obs, state=state, deterministic=True)
        expected.append(action)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.stack(expected))


def test_hierarchical_policy_holds_the_top_latent_between_calls(pendulum_level0: Path) -> None:
    top = SAC("LSPPolicy", LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0), seed=0)
    policy = HierarchicalPolicy.from_levels([pendulum_level0, top], [{"action_repeat": 4}])
    obs = np.zeros((2, 3), np.float32)
    state, held = None, []
    for _ in range(6):
        _, state = policy.predict(obs, state=state, deterministic=False)
        held.append(state[1].copy())
    assert np.array_equal(held[0], held[3]) and not np.array_equal(held[3], held[4])  # resampled every 4 steps
    _, restarted = policy.predict(obs, state=state, episode_start=np.array([True, False]), deterministic=False)
    assert not np.array_equal(restarted[1][0], held[-1][0]) and np.array_equal(restarted[1][1], held[-1][1])


def test_zoo_run_folder_with_vecnormalize_is_loaded_frozen(tmp_path: Path) -> None:
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_reward=False)
    model = SAC("LSPPolicy", venv, learning_starts=20, seed=0)
    model.learn(80)
    run = tmp_path / "sac" / "Pendulum-v1_1"
    (run / "Pendulum-v1").mkdir(parents=True)
    model.save(run / "Pendulum-v1.zip")
    venv.save(run / "Pendulum-v1" / "vecnormalize.pkl")
    # as rl_zoo3's ExperimentManager saves it: an OrderedDict of the hyperparameters
    (run / "Pendulum-v1" / "config.yml").write_text(yaml.dump(OrderedDict([("normalize", True)])))

    inner = RecordActions(gym.make("Pendulum-v1"))
    env = LatentActionWrapper(inner, run)
    obs, _ = env.reset(seed=0)
    latent = np.array([0.3], np.float32)
    env.step(latent)
    expected = 2.0 * squashed(model, venv.normalize_obs(obs[None])[0], latent)
    np.testing.assert_allclose(inner.actions[-1], expected, atol=1e-6)
    assert not np.allclose(venv.normalize_obs(obs[None])[0], obs)  # the statistics really change the input


def test_a_lower_level_that_is_not_a_latent_space_policy_is_rejected(tmp_path: Path) -> None:
    mlp = SAC("MlpPolicy", "Pendulum-v1")
    mlp.save(tmp_path / "mlp.zip")
    ppo = PPO("MlpPolicy", "Pendulum-v1", n_steps=64)
    for lower in (mlp, tmp_path / "mlp.zip", ppo):
        with pytest.raises(TypeError, match=r"not a latent-space policy.*LSPPolicy"):
            LatentActionWrapper(gym.make("Pendulum-v1"), lower)


def test_observation_shape_mismatch_names_both_shapes(pendulum_level0: Path) -> None:
    with pytest.raises(ValueError, match=r"expects observations of shape \(3,\), but would see shape \(2,\)"):
        LatentActionWrapper(gym.make("MountainCarContinuous-v0"), pendulum_level0)


def test_action_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"Action shape mismatch.*\(2,\).*\(1,\)"):
        LatentActionWrapper(
            gym.make("Pendulum-v1"),
            lsp_model(EndsAfter()),
            lower_obs=[0, 1, 2, 2],  # 4 entries, so only the action shape is wrong
        )


def test_action_bounds_mismatch_names_both_boxes(pendulum_level0: Path) -> None:
    """A level maps latents into the action box it was trained for: another box is an error, not a silent rescale."""
    rescaled = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)
    with pytest.raises(
        ValueError, match=r"trained for actions in \[\[-2\.\], \[2\.\]\], but .* takes actions in \[\[-1\.\], \[1\.\]\]"
    ):
        LatentActionWrapper(rescaled, pendulum_level0)


def test_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "level0.zip"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        LatentActionWrapper(gym.make("Pendulum-v1"), missing)
    with pytest.raises(FileNotFoundError, match="not an RL Zoo run folder"):
        LatentActionWrapper(gym.make("Pendulum-v1"), tmp_path)
    with pytest.raises(FileNotFoundError, match="No HierarchicalPolicy archive"):
        HierarchicalPolicy.load(missing)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_bound": float("inf")}, "latent_bound must be a finite positive number"),
        ({"latent_bound": 0}, "latent_bound must be a finite positive number"),
        ({"action_repeat": 0}, "action_repeat must be a positive integer"),
        ({"action_repeat": 2.7}, "action_repeat must be a positive integer"),
        ({"action_prior": "laplace"}, "action_prior must be 'gaussian' or 'uniform'"),
        ({"prior_coef": float("nan")}, "prior_coef must be a finite number >= 0"),
        ({"prior_coef": -0.1}, "prior_coef must be a finite number >= 0"),
        ({"prior_coef": "1e-1"}, "in YAML write numbers with a dot"),
    ],
)
def test_invalid_wrapper_settings_are_rejected(pendulum_level0: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, **kwargs)


def test_numpy_scalars_are_valid_wrapper_settings(pendulum_level0: Path) -> None:
    settings = dict(latent_bound=np.float32(2.0), action_repeat=np.int64(2), prior_coef=np.float64(0.5))
    env = LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, **settings)
    assert env.action_space.high[0] == 2.0 and env.action_repeat == 2 and env.prior_coef == 0.5
    assert type(env.action_repeat) is int and type(env.latent_bound) is float


def test_a_non_finite_latent_is_refused(pendulum_level0: Path) -> None:
    env = LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite latent"):
        env.step(np.array([np.nan], np.float32))


def test_mismatched_wrapper_settings_in_a_hierarchy_are_rejected(pendulum_level0: Path) -> None:
    top = SAC("MlpPolicy", LatentActionWrapper(gym.make("Pendulum-v1"), pendulum_level0, latent_bound=2.0))
    with pytest.raises(ValueError, match=r"latent_bounds \[3\.0\] differ from the latent boxes .* \(\[2\.0\]\)"):
        HierarchicalPolicy.from_levels([pendulum_level0, top])  # trained with latent_bound=2, told 3
    # Not told: read from the level above
    assert HierarchicalPolicy.from_levels([pendulum_level0, top], [{"latent_bound": 2.0}]).latent_bounds == [2.0]
