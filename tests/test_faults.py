"""Fault injection: bad numbers fail loudly, where they enter, before anything trained is spoiled."""

import json
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp import HierarchicalPolicy, LatentActionWrapper

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
        ({"squash_epsilon": -1e-6}, "squash_epsilon must be a finite number >= 0"),
        ({"squash_epsilon": "1e-6"}, "squash_epsilon must be a finite number >= 0, got the string '1e-6'"),
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


# --- HierarchicalPolicy settings and files -------------------------------------------------------


@pytest.fixture(scope="module")
def two_levels(tmp_path_factory) -> tuple[Path, Path]:
    """A Pendulum level 0 and a level 1 trained a few steps in its latent space, both saved."""
    folder = tmp_path_factory.mktemp("faults")
    level0 = SAC("LSPPolicy", "Pendulum-v1", learning_starts=10, seed=0)
    level0.learn(30)
    level0.save(folder / "level0.zip")
    env = LatentActionWrapper(gym.make("Pendulum-v1"), folder / "level0.zip", action_repeat=2)
    level1 = SAC("LSPPolicy", env, learning_starts=10, seed=0)
    level1.learn(30)
    level1.save(folder / "level1.zip")
    return folder / "level0.zip", folder / "level1.zip"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"action_reapeat": 2},
            "setting for level 0: 'action_reapeat'; did you mean 'action_repeat'",
        ),
        ({"action_repeat": 0}, "action_repeat must be a positive integer, got 0"),
        ({"action_repeat": 2.7}, "action_repeat must be a positive integer, got 2.7"),
        ({"action_repeat": 2, "latent_bound": -1.0}, "latent_bound must be a finite positive number"),
        ({"action_repeat": 2, "lower_obs": 7}, "lower_obs=7 is out of range"),
        ({"action_repeat": 2, "lower_obs": 2}, r"expects observations of shape \(3,\), but would see shape \(2,\)"),
    ],
)
def test_from_levels_refuses_bad_settings_at_construction(two_levels, settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HierarchicalPolicy.from_levels(list(two_levels), [settings])


def test_numpy_scalars_are_valid_hierarchy_settings(two_levels) -> None:
    policy = HierarchicalPolicy.from_levels(list(two_levels), [{"action_repeat": np.int64(2), "latent_bound": np.float32(3)}])
    assert policy.action_repeats == [2] and policy.latent_bounds == [3.0]


def test_loading_what_is_not_a_hierarchy_names_the_file(two_levels, tmp_path: Path) -> None:
    policy = HierarchicalPolicy.from_levels(list(two_levels), [{"action_repeat": 2}])
    policy.save(tmp_path / "stack.zip")
    # a level's zip, not a hierarchy
    with pytest.raises(ValueError, match=f"{two_levels[0]} has no manifest.json: it is not a HierarchicalPolicy archive"):
        HierarchicalPolicy.load(two_levels[0])
    # truncated
    data = (tmp_path / "stack.zip").read_bytes()
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    # (half a file still opens as a zip: the torch file inside it is a zip of its own)
    with pytest.raises(ValueError, match=f"{tmp_path / 'truncated.zip'} (has no manifest.json|is not a readable)"):
        HierarchicalPolicy.load(tmp_path / "truncated.zip")
    (tmp_path / "cut.zip").write_bytes(data[:100])
    with pytest.raises(ValueError, match=f"{tmp_path / 'cut.zip'} is not a readable HierarchicalPolicy archive"):
        HierarchicalPolicy.load(tmp_path / "cut.zip")
    # a newer format
    with zipfile.ZipFile(tmp_path / "stack.zip") as archive, zipfile.ZipFile(tmp_path / "future.zip", "w") as future:
        for item in archive.namelist():
            content = archive.read(item)
            if item == "manifest.json":
                content = json.dumps({**json.loads(content), "format_version": 99}).encode()
            future.writestr(item, content)
    with pytest.raises(ValueError, match="format_version 99; this release of sb3-lsp reads version 1"):
        HierarchicalPolicy.load(tmp_path / "future.zip")
    # and the intact file still loads and acts
    loaded = HierarchicalPolicy.load(tmp_path / "stack.zip")
    assert loaded.predict(np.zeros(3, np.float32))[0].shape == (1,)


def test_a_truncated_level_zip_is_named(two_levels, tmp_path: Path) -> None:
    data = two_levels[0].read_bytes()
    (tmp_path / "level0.zip").write_bytes(data[: len(data) // 3])
    for load in (
        lambda: LatentActionWrapper(gym.make("Pendulum-v1"), tmp_path / "level0.zip"),
        lambda: HierarchicalPolicy.from_levels([tmp_path / "level0.zip", two_levels[1]], [{"action_repeat": 2}]),
    ):
        with pytest.raises(ValueError, match=f"{tmp_path / 'level0.zip'} is not a readable SB3 model .zip"):
            load()


# --- settings checked before work starts ----------------------------------------------------------

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--goal", "5"], "goal index must be in 0..2, got 5"),
        (["--eval-episodes", "0"], "--eval-episodes: must be a finite number above 0, got 0"),
        (["--scale", "nan"], "--scale: must be a finite number above 0, got nan"),
    ],
)
def test_demo_flags_are_checked_before_training(tmp_path: Path, flags: list[str], message: str) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "sb3_lsp.demo", "--output", str(tmp_path / "demo"), *flags]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "demo").exists()


def test_a_benchmark_goal_out_of_range_fails_before_any_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    config = {
        "name": "bad_goal",
        "seeds": [0],
        "budget": 100,
        "eval": {"every": 50, "episodes": 1},
        "envs": [{"id": "Pendulum-v1"}, {"name": "maze", "id": "sb3_lsp/PointCrossMaze-v0", "env_kwargs": {"goal": 3}}],
        "methods": [{"name": "a", "algo": "sac", "policy": "LSPPolicy"}],
    }
    (tmp_path / "bad_goal.yml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "benchmarks.run", str(tmp_path / "bad_goal.yml"), "--output", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "a | maze | seed 0: cannot make sb3_lsp/PointCrossMaze-v0" in result.stderr
    assert "goal index must be in 0..2, got 3" in result.stderr and not (tmp_path / "out").exists()


# --- layerwise training: validated up front, resumed, never built on a partial level ---------------

LAYERWISE = {
    "seed": 3,
    "levels": [
        {
            "env": "Pendulum-v1",
            "algo": "sac",
            "hyperparams": {"policy": "LSPPolicy", "n_timesteps": 250, "learning_starts": 100},
        },
        {
            "env": "Pendulum-v1",
            "algo": "sac",
            "wrapper": {"action_repeat": 2, "prior_coef": 0.1},
            "hyperparams": {"policy": "LSPPolicy", "n_timesteps": 200, "learning_starts": 50},
        },
    ],
}


def hierarchy_cli(config: dict, output: Path, *extra: str, popen: bool = False):
    import subprocess
    import sys

    import yaml

    path = output.parent / f"{output.name}.yml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "sb3_lsp.hierarchy", "train", str(path), "--output", str(output), *extra]
    if popen:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["levels"][1]["wrapper"].update(action_reapet=2), "'action_reapet'; did you mean 'action_repeat'"),
        (lambda c: c["levels"][1]["wrapper"].update(prior_coef="1e-1"), "in YAML write numbers with a dot"),
        (lambda c: c["levels"][1]["wrapper"].update(lower_obs=2), "lower_obs=2"),
        (lambda c: c["levels"][0]["hyperparams"].update(policy="MlpPolicy"), "level 1 (Pendulum-v1): "),
        (lambda c: c["levels"][1].update(wrappers={}), "'wrappers'; did you mean 'wrapper'"),
        (lambda c: c["levels"][0]["hyperparams"].update(n_timesteps="1e4"), "n_timesteps must be a positive integer"),
    ],
)
def test_a_mistake_in_any_level_fails_before_level_0_trains(tmp_path: Path, change, message: str) -> None:
    import copy

    config = copy.deepcopy(LAYERWISE)
    change(config)
    result = hierarchy_cli(config, tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_a_level_that_ended_before_its_budget_stops_the_command(tmp_path: Path) -> None:
    # A callback that stops training after one 200-step episode, as an interrupted run ends early
    import copy

    config = copy.deepcopy(LAYERWISE)
    stop = {"stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes": {"max_episodes": 1}}
    config["levels"][0]["hyperparams"]["callback"] = [stop]
    result = hierarchy_cli(config, tmp_path / "out", "--", "--eval-freq", "-1")
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert "level 0/1 (Pendulum-v1) ended after 200 of its 250 steps" in result.stderr
    assert not (tmp_path / "out" / "level_1").exists() and not (tmp_path / "out" / "hierarchy.zip").exists()


@pytest.mark.slow
def test_an_interrupted_run_resumes_reusing_every_finished_level(tmp_path: Path) -> None:
    import copy
    import os
    import signal
    import time

    out = tmp_path / "out"

    def run_until(condition) -> None:
        """Start the command, and SIGKILL its whole process group (rl_zoo3 child included) once ``condition()``."""
        process = hierarchy_cli(LAYERWISE, out, "--", "--eval-freq", "-1", popen=True)
        deadline = time.time() + 300
        while not condition() and time.time() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert condition(), process.communicate()[0]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # 1. killed while level 0 trains: nothing finished, nothing reused
    run_until(lambda: (out / "level_0" / "hyperparams.yml").is_file())
    assert not (out / "level_0" / "finished.json").exists()
    # 2. rerun, killed while level 1 trains
    run_until(lambda: (out / "level_1" / "hyperparams.yml").is_file())
    assert (out / "level_0" / "finished.json").is_file() and not (out / "hierarchy.zip").exists()
    level0_run = json.loads((out / "level_0" / "finished.json").read_text())["run_folder"]

    resumed = hierarchy_cli(LAYERWISE, out, "--", "--eval-freq", "-1")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"level 0/1: reusing {level0_run}" in resumed.stdout
    assert "level 1/1: an earlier run of this level did not finish" in resumed.stdout

    again = hierarchy_cli(LAYERWISE, out, "--", "--eval-freq", "-1")
    assert again.returncode == 0 and "level 0/1: reusing" in again.stdout and "level 1/1: reusing" in again.stdout
    # the same hierarchy an uninterrupted run writes: the config's settings, level 0 from its finished run
    policy = HierarchicalPolicy.load(out / "hierarchy.zip")
    assert policy.action_repeats == [2] and policy.latent_bounds == [3.0]
    assert str(policy.levels[0].source).startswith(level0_run)
    # a changed level-1 setting retrains level 1 only
    changed = copy.deepcopy(LAYERWISE)
    changed["levels"][1]["wrapper"]["prior_coef"] = 0.5
    rerun = hierarchy_cli(changed, out, "--", "--eval-freq", "-1")
    assert rerun.returncode == 0 and "level 0/1: reusing" in rerun.stdout and "level 1/1: the run in" in rerun.stdout
