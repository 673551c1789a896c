"""Hierarchies with plain RL Zoo commands: a level-1 run on a level-0 run folder, watched, plotted and tuned."""

import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import optuna
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from rl_zoo3.utils import get_saved_hyperparams, get_wrapper_class
from stable_baselines3 import SAC

from sb3_lsp import LatentActionWrapper, LSPPolicy
from sb3_lsp.zoo import FLOW_PARAMS, WRAPPER_PARAMS

ROOT = Path(__file__).resolve().parents[1]
LEVEL0, LEVEL1 = "sb3_lsp/PointAnyDirection-v0", "sb3_lsp/PointCrossMaze-v0"
# Few steps, and learning only over the last ones: a run or trial is seconds
STEPS = ["-n", "300", "--num-threads", "1"]
TUNING = ["--n-evaluations", "1", "--eval-episodes", "1", "--sampler", "random", "--pruner", "none", "--no-optim-plots"]
ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def level0_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Level 0, trained with the README's command on the package's hyperparams/sac_lsp.yml; its run folder."""
    folder = tmp_path_factory.mktemp("level0")
    run(
        "rl_zoo3.train", "--algo", "sac", "--env", LEVEL0, "-conf", str(ROOT / "hyperparams" / "sac_lsp.yml"),
        "--gym-packages", "sb3_lsp", "-f", "logs", *STEPS, "-params", "learning_starts:250", cwd=folder,
    )  # fmt: skip
    return folder / "logs" / "sac" / "sb3_lsp-PointAnyDirection-v0_1"


def level1_config(tmp_path: Path, level0_run: Path) -> tuple[Path, dict]:
    """The package's level-1 Point entry, on ``level0_run`` (an absolute path), learning from step 290 on."""
    entry = yaml.safe_load((ROOT / "hyperparams" / "sac_lsp_level1.yml").read_text())[LEVEL1]
    ((_, wrapper_kwargs),) = entry["env_wrapper"][0].items()
    wrapper_kwargs["lower"] = str(level0_run)
    entry.update(learning_starts=290, batch_size=64)
    path = tmp_path / "level1.yml"
    path.write_text(yaml.safe_dump({LEVEL1: entry}))
    return path, wrapper_kwargs


def test_level1_runs_on_a_level0_run_folder_and_enjoy_replays_its_wrapper(level0_run: Path, tmp_path: Path) -> None:
    conf, wrapper_kwargs = level1_config(tmp_path, level0_run)
    zoo = ("--algo", "sac", "--env", LEVEL1, "-f", "logs", "--gym-packages", "sb3_lsp")
    run("rl_zoo3.train", *zoo, "-conf", str(conf), *STEPS, cwd=tmp_path)
    model = SAC.load(tmp_path / "logs" / "sac" / "sb3_lsp-PointCrossMaze-v0_1" / "sb3_lsp-PointCrossMaze-v0.zip")
    assert type(model.policy) is LSPPolicy
    # Level 1 acts in level 0's 2-D latent space, not in the Point's force box
    assert model.action_space == gym.spaces.Box(-3.0, 3.0, (2,), np.float32)

    # rl_zoo3.enjoy re-creates the LatentActionWrapper from the run's config.yml: a 250-step maze
    # episode is at most 25 decisions of 10 steps, so 110 decisions end 4 or more episodes (without
    # the wrapper 110 steps would end none, unless the goal were reached in 110 force steps). An
    # episode ends early when the goal is reached, which even this short training sometimes does.
    assert wrapper_kwargs["action_repeat"] == 10
    enjoy = run("rl_zoo3.enjoy", *zoo, "--no-render", "-n", "110", cwd=tmp_path)
    lengths = [int(n) for n in re.findall(r"^Episode Length (\d+)$", enjoy.stdout, re.MULTILINE)]
    assert len(lengths) >= 4 and max(lengths) <= 25, enjoy.stdout[-2000:]

    plot = run("rl_zoo3.plots.plot_train", "--algo", "sac", "--env", LEVEL1, "-f", "logs", "-w", "1", cwd=tmp_path)
    assert "No data available" not in plot.stdout


def test_tuning_a_higher_level_samples_its_latent_space_and_trial_id_round_trips(level0_run: Path, tmp_path: Path) -> None:
    conf, wrapper_kwargs = level1_config(tmp_path, level0_run)
    # Plain rl_zoo3.train: --gym-packages sb3_lsp.zoo.plugin installs the samplers and experiment manager
    zoo = (
        "rl_zoo3.train",
        "--algo",
        "sac",
        "--env",
        LEVEL1,
        "-conf",
        str(conf),
        "--gym-packages",
        "sb3_lsp.zoo.plugin",
        *STEPS,
    )
    storage = ("--storage", "study.log", "--study-name", "level1")
    run(*zoo, *TUNING, "--optimize", "--n-trials", "2", *storage, "--optimization-log-path", "trials", cwd=tmp_path)

    study = optuna.load_study(study_name="level1", storage=JournalStorage(JournalFileBackend(str(tmp_path / "study.log"))))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for trial in study.trials:
        assert set(WRAPPER_PARAMS + FLOW_PARAMS) <= set(trial.params)
        # The trial's agent acted in a latent box of the sampled half-width
        model = SAC.load(tmp_path / "trials" / f"trial_{trial.number}" / "best_model.zip")
        assert model.action_space.high == pytest.approx([trial.params["latent_bound"]] * 2)

    # --trial-id 0: trial 0's agent and wrapper arguments, the YAML's other wrapper arguments
    params = study.trials[0].params
    run(*zoo, *storage, "--trial-id", "0", "-f", "replay", cwd=tmp_path)
    run_folder = tmp_path / "replay" / "sac" / "sb3_lsp-PointCrossMaze-v0_1"
    model = SAC.load(run_folder / "sb3_lsp-PointCrossMaze-v0.zip")
    assert model.action_space.high == pytest.approx([params["latent_bound"]] * 2)
    assert (model.actor.n_coupling_layers, model.actor.embedding_dim) == (params["n_coupling_layers"], params["embedding_dim"])
    saved, _ = get_saved_hyperparams(str(run_folder / "sb3_lsp-PointCrossMaze-v0"))
    expected_kwargs = {**wrapper_kwargs, **{key: params[key] for key in WRAPPER_PARAMS}}
    assert saved["env_wrapper"] == [{"sb3_lsp.LatentActionWrapper": expected_kwargs}]

    # What rl_zoo3.enjoy builds from that config holds each latent for the trial's action_repeat
    # and rewards it with the trial's prior_coef
    env = get_wrapper_class(saved)(gym.make(LEVEL1))
    wrapper = env
    while not isinstance(wrapper, LatentActionWrapper):
        wrapper = wrapper.env
    env.reset(seed=0)
    latent = np.array([1.0, -0.5], np.float32)
    _, _, terminated, _, info = env.step(latent)
    assert not terminated and info["inner_steps"] == params["action_repeat"]
    assert info["prior_reward"] == pytest.approx(-0.5 * params["prior_coef"] * 1.25)

    # Threads would share the experiment manager's env wrappers
    refused = run(*zoo, *TUNING, "--optimize", "--n-jobs", "2", cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "--n-jobs 2: trials that sample sb3_lsp.LatentActionWrapper" in refused.stderr
