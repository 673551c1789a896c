"""Layerwise training (algorithm 1) through `python -m sb3_lsp.hierarchy train`, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_lsp import HierarchicalPolicy

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {
    "seed": 7,
    "levels": [
        {
            "env": "Pendulum-v1",
            "algo": "sac",
            "hyperparams": {"policy": "LSPPolicy", "n_timesteps": 250, "learning_starts": 100, "learning_rate": 1e-3},
        },
        {
            "env": "Pendulum-v1",
            "algo": "sac",
            "wrapper": {"action_repeat": 2, "action_prior": "gaussian", "prior_coef": 0.1, "latent_bound": 2.5},
            "hyperparams": {"policy": "LSPPolicy", "n_timesteps": 150, "learning_starts": 50},
        },
    ],
}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sb3_lsp.hierarchy", *args], capture_output=True, text=True, cwd=cwd)


def test_the_shipped_configs_train_from_any_directory(tmp_path: Path) -> None:
    """hyperparams/ ships with the package: the README's config name works outside the repository."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # -n 300 (to every rl_zoo3.train): a short run of each level, before learning_starts
    args = ("train", "hyperparams/hierarchy_point_maze.yml", "--output", "out", "--", "-n", "300", "--eval-freq", "-1")
    result = run_cli(*args, cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (elsewhere / "out" / "hierarchy.zip").is_file()
    assert HierarchicalPolicy.load(elsewhere / "out" / "hierarchy.zip").action_repeats == [10]

    result = run_cli("train", "hyperparams/no_such_file.yml", cwd=elsewhere)
    assert result.returncode == 2 and "no shipped file of that name: hierarchy_ant_maze.yml" in result.stderr


def test_layerwise_training_writes_zoo_run_folders_and_the_composed_policy(tmp_path: Path) -> None:
    config_path = tmp_path / "hierarchy.yml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    result = run_cli("train", str(config_path), "--output", str(tmp_path / "out"), "--", "--eval-freq", "-1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    runs = [tmp_path / "out" / f"level_{i}" / "sac" / "Pendulum-v1_1" for i in range(2)]
    for run in runs:  # ordinary RL Zoo run folders
        assert (run / "Pendulum-v1.zip").is_file() and (run / "Pendulum-v1" / "config.yml").is_file()
    level1_config = dict(yaml.load((runs[1] / "Pendulum-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader))
    wrapper_kwargs = level1_config["env_wrapper"][0]["sb3_lsp.LatentActionWrapper"]
    assert Path(wrapper_kwargs["lower"]) == runs[0].resolve()
    assert wrapper_kwargs["action_repeat"] == 2 and wrapper_kwargs["latent_bound"] == 2.5
    assert SAC.load(runs[1] / "Pendulum-v1.zip").action_space.high.tolist() == [2.5]  # acts in level 0's latent box

    policy = HierarchicalPolicy.load(tmp_path / "out" / "hierarchy.zip")
    assert policy.action_repeats == [2] and policy.latent_bounds == [2.5]
    level0 = SAC.load(runs[0] / "Pendulum-v1.zip")
    obs = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        policy.levels[0].predict(obs, deterministic=True), level0.predict(obs, deterministic=True)[0]
    )
    mean_return, _ = evaluate_policy(policy, Monitor(gym.make("Pendulum-v1")), n_eval_episodes=2)
    assert -2000 < mean_return <= 0


def test_bad_configs_get_clear_errors(tmp_path: Path) -> None:
    missing = run_cli("train", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2 and f"No settings file at {tmp_path / 'nope.yml'}" in missing.stderr

    config_path = tmp_path / "bad.yml"
    config_path.write_text(yaml.safe_dump({"levels": [{"env": "Pendulum-v1"}]}))
    bad = run_cli("train", str(config_path))
    assert bad.returncode == 2 and "level 0 lacks ['hyperparams']" in bad.stderr


def test_the_shipped_hierarchies_take_their_settings_from_sac_lsp_yml(tmp_path: Path) -> None:
    from sb3_lsp.zoo.layerwise import load_config

    entries = yaml.safe_load((ROOT / "hyperparams" / "sac_lsp.yml").read_text())
    point, maze = entries["sb3_lsp/PointAnyDirection-v0"], entries["sb3_lsp/PointCrossMaze-v0"]
    config = load_config(Path("hierarchy_point_maze.yml"))

    def without_use_sde(hyperparams: dict) -> dict:  # the build check's SAC writes use_sde into the levels' policy_kwargs
        return {**hyperparams, "policy_kwargs": {k: v for k, v in hyperparams["policy_kwargs"].items() if k != "use_sde"}}

    level0, level1 = (without_use_sde(level["hyperparams"]) for level in config["levels"])
    assert level0 == {**point, "policy": "LSPPolicy"}
    assert level1 == {**point, "policy": "LSPPolicy", "n_timesteps": 5000, "env_kwargs": {"goal": 0}, "gamma": 0.95}
    assert config["baseline"]["hyperparams"] == {**maze, "policy": "LSPPolicy", "gamma": 0.95}  # FrameSkip 10 included

    # A reference to an entry that is not there names the file's entries, before anything trains
    config_path = tmp_path / "typo.yml"
    levels = [{"env": "Pendulum-v1", "hyperparams": {"zoo": {"file": "sac_lsp.yml", "env": "Pendulm-v1"}}}]
    config_path.write_text(yaml.safe_dump({"levels": levels}))
    typo = run_cli("train", str(config_path))
    assert typo.returncode == 2 and "has no entry 'Pendulm-v1'; its entries: " in typo.stderr
