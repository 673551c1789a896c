"""sb3_lsp/MultiGoal-v0, the action-density helper and benchmarks/multigoal.py."""

import csv
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC

import sb3_lsp
from sb3_lsp.envs import MULTIGOAL_GOALS

matplotlib.use("Agg")


def test_multigoal_reward_costs_and_goals() -> None:
    env = gym.make("sb3_lsp/MultiGoal-v0")
    assert env.spec.max_episode_steps == 30
    obs, _ = env.reset(seed=0)
    assert np.linalg.norm(obs) < 0.5  # starts near the origin
    position = obs.astype(np.float64)
    for action in ([0.5, 0.2], [2.0, -3.0], [1.0, 0.0]):  # the second is clipped to the unit box
        obs, reward, terminated, _, info = env.step(np.array(action, np.float32))
        clipped = np.clip(action, -1, 1)
        position = position + clipped
        nearest = min(np.sum((position - goal) ** 2) for goal in MULTIGOAL_GOALS)
        expected = -30.0 * np.sum(clipped**2) - nearest + (10.0 if nearest < 1.0 else 0.0)
        np.testing.assert_allclose(obs, position, atol=1e-5)
        assert reward == pytest.approx(expected, rel=1e-5)
        assert terminated == (nearest < 1.0) and info["is_success"] == terminated
    # Every goal is reachable, and the index of the goal reached is reported.
    for index, goal in enumerate(MULTIGOAL_GOALS):
        env.reset(seed=1)
        for _ in range(5):
            obs, _, terminated, _, info = env.step(np.sign(goal).astype(np.float32))
            if terminated:
                break
        assert terminated and info["goal"] == index


def test_action_density_of_sb3s_gaussian_matches_the_closed_form() -> None:
    model = SAC("MlpPolicy", "sb3_lsp/MultiGoal-v0", seed=0)
    obs = np.array([1.0, -2.0], np.float32)
    axes, density = sb3_lsp.action_density(model, obs, resolution=51)
    mean, log_std, _ = model.actor.get_action_dist_params(th.as_tensor(obs[None]))
    mean, std = mean[0].detach().numpy(), log_std[0].exp().detach().numpy()
    a = axes[:, 0]  # the action box is [-1, 1]^2: axes in env units are the squashed ones
    u = np.arctanh(a)
    # tanh of N(mean, std), per axis: N(atanh a) / (1 - a^2); the density is [second, first]
    marginal = [np.exp(-0.5 * ((u - mean[i]) / std[i]) ** 2) / (std[i] * np.sqrt(2 * np.pi)) / (1 - a**2) for i in (0, 1)]
    np.testing.assert_allclose(density, np.outer(marginal[1], marginal[0]), rtol=1e-3)


def test_action_density_of_a_flow_is_its_exact_likelihood_in_env_units(tmp_path: Path) -> None:
    env = gym.make("sb3_lsp/MultiGoal-v0")
    env.unwrapped.action_space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    model = SAC("LSPPolicy", env, seed=0)
    obs = np.array([0.5, 0.5], np.float32)
    axes, density = sb3_lsp.action_density(model, obs, resolution=9)
    assert axes[0, 0] > -2.0 and axes[-1, 0] < 2.0 and axes[0, 1] > 0.0 and axes[-1, 1] < 1.0
    squashed = model.policy.scale_action(np.stack(np.meshgrid(axes[:, 0], axes[:, 1]), axis=-1).reshape(-1, 2))
    with th.no_grad():
        log_prob = model.actor.log_prob(th.as_tensor(obs).expand(81, 2), th.as_tensor(squashed, dtype=th.float32))
    np.testing.assert_allclose(density.ravel(), log_prob.exp().numpy(), rtol=1e-5)
    ax = sb3_lsp.plot_action_density(model, obs, resolution=9)
    assert ax.images and ax.get_xlabel() == "action[0]"
    ax.figure.savefig(tmp_path / "density.png")
    assert (tmp_path / "density.png").stat().st_size > 1000


def test_action_density_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="2-D action spaces"):
        sb3_lsp.action_density(SAC("LSPPolicy", "Hopper-v5"), np.zeros(11, np.float32))
    with pytest.raises(ValueError, match="without gSDE"):
        sb3_lsp.action_density(SAC("MlpPolicy", "sb3_lsp/MultiGoal-v0", use_sde=True), np.zeros(2, np.float32))


def test_multigoal_benchmark_script_writes_its_record_and_resumes(tmp_path: Path) -> None:
    root = Path(__file__).parents[1]
    command = [sys.executable, "-m", "benchmarks.multigoal", "--seeds", "0", "--steps", "1050"]
    command += ["--output", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]
    first = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "out" / "goals.csv")))
    for method in ("SAC MlpPolicy", "SAC LSPPolicy"):
        shares = [float(row["share"]) for row in rows if row["method"] == method and row["seed"] == "0"]
        assert len(shares) == 5 and sum(shares) == pytest.approx(1.0)
    assert (tmp_path / "out" / "trajectories.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "density.png").stat().st_size > 10_000
    assert "[sb3_lsp] SAC LSPPolicy seed 0: " in first.stdout and "rl_zoo3.train" in first.stdout  # an RL Zoo run
    # A second invocation reuses the trained models: it trains nothing.
    second = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0 and "rl_zoo3.train" not in second.stdout


@pytest.mark.slow
def test_trained_flow_policy_reaches_at_least_three_of_the_four_goals(tmp_path: Path) -> None:
    # The benchmark's own settings and budget (benchmarks/multigoal.py), seed 0: 50 stochastic
    # trajectories from the start state, as in the committed trajectories.png.
    from benchmarks.multigoal import TRAJECTORIES, rollouts, train

    th.set_num_threads(1)
    model = train("SAC LSPPolicy", seed=0, steps=6000, runs=tmp_path)
    _, goals = rollouts(model, TRAJECTORIES)
    reached = set(goals.tolist()) - {-1}
    assert len(reached) >= 3, f"goals reached {sorted(reached)}, shares {np.bincount(goals + 1, minlength=5) / len(goals)}"
