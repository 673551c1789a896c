"""SACDiagnostics against quantities computed independently, and its place in benchmarks.run."""

import csv
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from sb3_contrib import TQC
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.grid import load_config, make_spec
from sb3_lsp import SACDiagnostics
from sb3_lsp.diagnostics import DIAGNOSTIC_COLUMNS

EPISODE_LENGTH = 5


class FixedEpisodes(gym.Env):
    """Reward 1 per step, episodes of exactly 5 steps, every other one a success."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self) -> None:
        self.episodes = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episodes = 0, self.episodes + 1
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t == EPISODE_LENGTH
        info = {"is_success": done and self.episodes % 2 == 0}
        return np.full(2, self.t / 10, np.float32), 1.0, done, False, info


@pytest.mark.parametrize("algo", [SAC, TQC])
def test_every_column_against_its_independent_computation(algo, tmp_path: Path) -> None:
    model = algo("LSPPolicy", FixedEpisodes(), learning_starts=10, batch_size=8, gamma=0.9, seed=0)
    diagnostics = SACDiagnostics(make_vec_env(FixedEpisodes, n_envs=1), every=20, episodes=4, csv_path=tmp_path / "d.csv")
    model.learn(40, callback=diagnostics)
    rows = list(csv.DictReader(open(tmp_path / "d.csv")))
    assert [row["step"] for row in rows] == ["20", "40"] and list(rows[0]) == list(DIAGNOSTIC_COLUMNS)
    last = {key: float(value) for key, value in rows[-1].items()}
    # 4 episodes of 5 steps ended in each 20 steps, each with return 1 + 0.9 + ... + 0.9^4
    assert last["episodes"] == 4
    assert last["return_start"] == pytest.approx(sum(0.9**t for t in range(EPISODE_LENGTH)))
    # every other episode a success: 4 successes in 40 transitions
    assert last["success_share_replay"] == pytest.approx(4 / 40)
    # evaluation episodes alternate success too (the eval env counts its own episodes)
    assert 0.0 < last["success_deterministic"] < 1.0 and 0.0 < last["success_stochastic"] < 1.0
    # the row at step 40 comes before that step's update, which moves the coefficient by ~3e-4
    assert last["ent_coef"] == pytest.approx(float(th.exp(model.log_ent_coef.detach())), abs=1e-3)
    # the critic's value of the start state, with the starting action (finite, a plain number)
    assert np.isfinite(last["q_start"])
    # actions are in the box; entropy is -mean log pi of fresh samples (a 2-D flow near N(0, I) squashed)
    assert 0.0 < last["latent_abs_mean"] < 1.0 and 0.0 < last["latent_std"] < 1.0
    assert -3.0 < last["entropy"] < 3.0


def test_benchmark_config_references_a_base_and_adds_diagnostics(tmp_path: Path) -> None:
    base = {
        "name": "base",
        "seeds": [0, 1],
        "budget": 100,
        "eval": {"every": 50, "episodes": 2},
        "envs": [{"id": "Pendulum-v1"}, {"name": "other", "id": "Pendulum-v1"}],
        "shared": {"batch_size": 64, "tau": 0.01, "policy_kwargs": {"net_arch": [32]}},
        "methods": [{"name": "a", "algo": "sac", "policy": "LSPPolicy"}, {"name": "b", "algo": "sac", "policy": "MlpPolicy"}],
    }
    (tmp_path / "base.yml").write_text(yaml.safe_dump(base))
    (tmp_path / "child.yml").write_text(
        yaml.safe_dump(
            {
                "base": "base.yml",
                "name": "child",
                "seeds": [0],
                "methods": ["b"],
                "diagnostics": {"every": 50, "episodes": 1},
                "shared": {"tau": 0.005},
            },
            sort_keys=False,
        )
    )
    config = load_config(tmp_path / "child.yml")
    assert config["name"] == "child" and config["seeds"] == [0] and config["budget"] == 100
    assert config["methods"] == [base["methods"][1]] and config["envs"] == base["envs"]
    assert config["shared"] == {"batch_size": 64, "tau": 0.005, "policy_kwargs": {"net_arch": [32]}}
    spec = make_spec(config, config["methods"][0], config["envs"][0], 0, "b")
    assert spec["diagnostics"] == {"every": 50, "episodes": 1}
    assert "diagnostics" not in make_spec(base, base["methods"][0], base["envs"][0], 0, "a")  # old digests stay
    (tmp_path / "typo.yml").write_text(yaml.safe_dump({"base": "base.yml", "methods": ["c"]}))
    with pytest.raises(ValueError, match=r"methods \['c'\] are not in the base config"):
        load_config(tmp_path / "typo.yml")


def test_harness_writes_diagnostics_and_the_plot_script_draws_them(tmp_path: Path) -> None:
    config = {
        "name": "diag",
        "seeds": [0],
        "budget": 300,
        "eval": {"every": 150, "episodes": 1},
        "diagnostics": {"every": 150, "episodes": 1},
        "shared": {"learning_starts": 50, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}},
        "envs": [{"name": "maze goal 0", "id": "sb3_lsp/PointCrossMaze-v0", "env_kwargs": {"goal": 0}}],
        "methods": [{"name": "flat", "algo": "sac", "policy": "LSPPolicy"}],
    }
    (tmp_path / "diag.yml").write_text(yaml.safe_dump(config))
    root = Path(__file__).parents[1]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchmarks.run", str(tmp_path / "diag.yml"), "--workers", "1", "--output", str(out)]
    result = subprocess.run(
        [*command, "--results", str(tmp_path / "RESULTS.md")], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "runs" / "flat" / "maze_goal_0" / "seed_0" / "diagnostics.csv")))
    assert [row["step"] for row in rows] == ["150", "300"]
    plot = subprocess.run(
        [sys.executable, "-m", "benchmarks.diagnostics_plot", str(out), "--output", str(tmp_path / "png")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plot.returncode == 0, plot.stderr[-3000:]
    assert (tmp_path / "png" / "diagnostics_flat_maze_goal_0.png").stat().st_size > 10_000
