"""Drop-in conformance: the flow policies go through what SB3's own tests check for SAC and TQC.

Every policy name on both algorithms: Box, Dict and image observations, several environments
(DummyVecEnv and SubprocVecEnv), VecNormalize and frame stacking, HER with its replay buffer saved
and loaded, ``predict`` on single and batched observations, save/load in a fresh process,
``use_sde`` refused and asymmetric action boxes.
"""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import BitFlippingEnv, FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack, VecNormalize

import sb3_lsp

ALGOS = {"sac": SAC, "tqc": TQC}
#: Small networks and buffers: these tests check plumbing, not learning.
SMALL = dict(learning_starts=16, batch_size=16, buffer_size=2_000, seed=0)
SMALL_POLICY = dict(net_arch=[16], embedding_net_arch=[16])


class AsymmetricBoxEnv(gym.Env):
    """A one-step task whose action box is neither symmetric nor unit-sized; reward is highest at its upper corner."""

    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Box(np.array([-2.0, 0.5], np.float32), np.array([3.0, 1.0], np.float32))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = -float(np.sum((action - self.action_space.high) ** 2))
        return self.observation_space.sample(), reward, True, False, {}


#: policy name -> an environment with the observations it is for
ENVS = {
    "LSPPolicy": lambda: gym.make("Pendulum-v1"),
    "CnnLSPPolicy": lambda: FakeImageEnv(action_dim=2, screen_height=40, screen_width=40, n_channels=1, discrete=False),
    "MultiInputLSPPolicy": lambda: SimpleMultiObsEnv(discrete_actions=False),
}


def make_model(algo: str, policy: str, env, **kwargs):
    policy_kwargs = dict(SMALL_POLICY, **kwargs.pop("policy_kwargs", {}))
    if algo == "tqc":
        policy_kwargs["n_quantiles"] = 5
    return ALGOS[algo](policy, env, policy_kwargs=policy_kwargs, **{**SMALL, **kwargs})


def assert_actions_in_box(actions: np.ndarray, action_space: spaces.Box, batch: int | None) -> None:
    expected_shape = action_space.shape if batch is None else (batch, *action_space.shape)
    assert actions.shape == expected_shape and actions.dtype == np.float32
    assert np.all(actions >= action_space.low) and np.all(actions <= action_space.high)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("policy", ENVS)
def test_each_observation_type_learns_and_predicts_single_and_batched(algo: str, policy: str) -> None:
    model = make_model(algo, policy, ENVS[policy]())
    model.learn(40)
    assert model.num_timesteps == 40 and np.isfinite(model.logger.name_to_value["train/actor_loss"])
    env = ENVS[policy]()
    single, _ = env.reset(seed=0)
    batched = model.get_env().reset()  # a VecEnv's batch of one
    stacked = {k: np.stack([v] * 3) for k, v in single.items()} if isinstance(single, dict) else np.stack([single] * 3)
    for deterministic in (True, False):
        assert_actions_in_box(model.predict(single, deterministic=deterministic)[0], env.action_space, None)
        assert_actions_in_box(model.predict(batched, deterministic=deterministic)[0], env.action_space, 1)
        assert_actions_in_box(model.predict(stacked, deterministic=deterministic)[0], env.action_space, 3)
    # The same observation three times is the same deterministic action three times.
    actions, _ = model.predict(stacked, deterministic=True)
    np.testing.assert_allclose(actions, np.stack([model.predict(single, deterministic=True)[0]] * 3), atol=1e-6)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("policy", ENVS)
def test_features_extractor_sharing_follows_sb3s_default(algo: str, policy: str) -> None:
    sb3_policy = {"LSPPolicy": "MlpPolicy", "CnnLSPPolicy": "CnnPolicy", "MultiInputLSPPolicy": "MultiInputPolicy"}[policy]
    reference = ALGOS[algo](sb3_policy, ENVS[policy](), buffer_size=10)
    for share in (None, True, False):
        kwargs = {} if share is None else {"share_features_extractor": share}
        model = make_model(algo, policy, ENVS[policy](), buffer_size=10, policy_kwargs=kwargs)
        shared = model.actor.features_extractor is model.critic.features_extractor
        expected = reference.policy.share_features_extractor if share is None else share
        assert shared == expected
        assert type(model.actor.features_extractor) is type(reference.actor.features_extractor)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(
    ("policy", "env", "fitting"),
    [
        ("LSPPolicy", lambda: BitFlippingEnv(n_bits=4, continuous=True), "MultiInputLSPPolicy"),
        ("LSPPolicy", ENVS["CnnLSPPolicy"], "CnnLSPPolicy"),
        ("CnnLSPPolicy", ENVS["LSPPolicy"], "LSPPolicy"),
        ("MultiInputLSPPolicy", ENVS["LSPPolicy"], "LSPPolicy"),
        ("CnnLSPPolicy", ENVS["MultiInputLSPPolicy"], "MultiInputLSPPolicy"),
    ],
)
def test_a_policy_for_other_observations_is_refused_naming_the_right_one(algo: str, policy: str, env, fitting: str) -> None:
    with pytest.raises(ValueError, match=f"use '{fitting}'"):
        ALGOS[algo](policy, env())


def test_image_observations_flatten_when_asked_to() -> None:
    from stable_baselines3.common.torch_layers import FlattenExtractor

    model = SAC(
        "LSPPolicy", ENVS["CnnLSPPolicy"](), buffer_size=10, policy_kwargs=dict(features_extractor_class=FlattenExtractor)
    )
    assert model.actor.features_dim == 40 * 40


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("vec_env_cls", [DummyVecEnv, SubprocVecEnv])
def test_several_environments_in_parallel(algo: str, vec_env_cls) -> None:
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, vec_env_cls=vec_env_cls)
    try:
        model = make_model(algo, "LSPPolicy", env)
        model.learn(40)
        assert model.num_timesteps == 40 and model.replay_buffer.size() == 20  # 20 steps of 2 envs
        assert_actions_in_box(model.predict(env.reset())[0], env.action_space, 2)
    finally:
        env.close()


@pytest.mark.parametrize("algo", ALGOS)
def test_vec_normalize_round_trips_with_the_model(algo: str, tmp_path: Path) -> None:
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0), gamma=0.99)
    model = make_model(algo, "LSPPolicy", env)
    model.learn(40)
    model.save(tmp_path / "model.zip")
    env.save(str(tmp_path / "vec_normalize.pkl"))
    raw_obs = np.array([[1.0, 0.0, 3.0], [0.0, -1.0, -6.0]], np.float32)
    expected, _ = model.predict(env.normalize_obs(raw_obs), deterministic=True)

    loaded_env = VecNormalize.load(str(tmp_path / "vec_normalize.pkl"), make_vec_env("Pendulum-v1", n_envs=2))
    loaded = ALGOS[algo].load(tmp_path / "model.zip", env=loaded_env)
    actions, _ = loaded.predict(loaded_env.normalize_obs(raw_obs), deterministic=True)
    np.testing.assert_allclose(actions, expected, atol=1e-6)
    loaded.learn(20, reset_num_timesteps=False)  # and training goes on


@pytest.mark.parametrize("algo", ALGOS)
def test_frame_stacked_images(algo: str) -> None:
    env = VecFrameStack(DummyVecEnv([ENVS["CnnLSPPolicy"]]), n_stack=3)
    model = make_model(algo, "CnnLSPPolicy", env)
    assert model.observation_space.shape == (3, 40, 40)  # SB3 puts the channels (stacked frames) first
    model.learn(40)
    assert_actions_in_box(model.predict(env.reset())[0], env.action_space, 1)


@pytest.mark.parametrize("algo", ALGOS)
def test_her_with_a_goal_env_saves_and_loads_its_replay_buffer(algo: str, tmp_path: Path) -> None:
    def goal_env():
        return BitFlippingEnv(n_bits=4, continuous=True, max_steps=4)

    her = dict(
        replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="future")
    )
    model = make_model(algo, "MultiInputLSPPolicy", goal_env(), **her)
    model.learn(60)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    stored = model.replay_buffer.size()
    assert stored == 60

    loaded = ALGOS[algo].load(tmp_path / "model.zip", env=goal_env())
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert isinstance(loaded.replay_buffer, HerReplayBuffer) and loaded.replay_buffer.size() == stored
    np.testing.assert_array_equal(loaded.replay_buffer.actions[:stored], model.replay_buffer.actions[:stored])
    loaded.learn(20, reset_num_timesteps=False)
    assert loaded.replay_buffer.size() == stored + 20


# Runs in a fresh interpreter: loads every saved model and writes its class and deterministic actions.
PROBE = """
import json, pickle, sys
import numpy as np
import sb3_lsp
from sb3_contrib import TQC
from stable_baselines3 import SAC

out = {}
for entry in json.loads(sys.argv[1]):
    model = {"sac": SAC, "tqc": TQC}[entry["algo"]].load(entry["path"])
    with open(entry["obs"], "rb") as file:
        obs = pickle.load(file)
    out[entry["path"]] = {"class": type(model.policy).__name__, "actions": model.predict(obs, deterministic=True)[0].tolist()}
print(json.dumps(out))
"""


def test_every_policy_name_saves_and_loads_in_a_fresh_process(tmp_path: Path) -> None:
    import pickle

    entries, expected = [], {}
    for algo in ALGOS:
        for policy in ENVS:
            model = make_model(algo, policy, ENVS[policy]())
            model.learn(20)
            path, obs_path = tmp_path / f"{algo}_{policy}.zip", tmp_path / f"{algo}_{policy}.obs.pkl"
            model.save(path)
            obs = model.get_env().reset()
            with open(obs_path, "wb") as file:
                pickle.dump(obs, file)
            entries.append({"algo": algo, "path": str(path), "obs": str(obs_path)})
            expected[str(path)] = (type(model.policy).__name__, model.predict(obs, deterministic=True)[0])
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(entries)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for path, (class_name, actions) in expected.items():
        assert loaded[path]["class"] == class_name
        np.testing.assert_allclose(loaded[path]["actions"], actions, atol=1e-6)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("policy", ENVS)
def test_use_sde_is_refused(algo: str, policy: str) -> None:
    with pytest.raises(ValueError, match="use_sde=True is not supported"):
        ALGOS[algo](policy, ENVS[policy](), use_sde=True, buffer_size=10)


@pytest.mark.parametrize("algo", ALGOS)
def test_asymmetric_action_boxes(algo: str) -> None:
    env = AsymmetricBoxEnv()
    model = make_model(algo, "LSPPolicy", env)
    model.learn(40)
    obs, _ = env.reset(seed=0)
    samples = np.stack([model.predict(obs, deterministic=False)[0] for _ in range(200)])
    assert_actions_in_box(samples, env.action_space, 200)
    # Both coordinates spread over their own interval, not over [-1, 1].
    assert samples[:, 0].max() - samples[:, 0].min() > 1.0 and samples[:, 1].min() >= 0.5
    # The replay buffer holds actions rescaled to [-1, 1], as SB3 stores them for a squashed policy.
    stored = model.replay_buffer.actions[: model.replay_buffer.size()]
    assert np.all(np.abs(stored) <= 1.0) and stored.min() < 0.0
    # The deterministic action is the flow's mode mapped onto this box.
    with th.no_grad():
        squashed = model.actor(th.as_tensor(obs[None]), deterministic=True).numpy()[0]
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], model.policy.unscale_action(squashed), atol=1e-5)
    assert isinstance(model.policy, sb3_lsp.LSPPolicy if algo == "sac" else sb3_lsp.TQCLSPPolicy)
