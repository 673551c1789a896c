"""The callbacks an RL Zoo YAML entry names (sb3_lsp.zoo.callbacks), on real models."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import SAC

from sb3_lsp.zoo.callbacks import InitFromPretrained


def test_fine_tuning_starts_as_exactly_the_pretrained_policy_on_the_widened_observation(tmp_path: Path) -> None:
    pretrained = SAC("LSPPolicy", "sb3_lsp/PointAnyDirection-v0", seed=1, buffer_size=10, policy_kwargs={"net_arch": [16]})
    pretrained.save(tmp_path / "level.zip")
    # the maze's observation is the pretrained level's (2 entries) with x, y appended
    model = SAC("LSPPolicy", "sb3_lsp/PointCrossMaze-v0", seed=2, buffer_size=10, policy_kwargs={"net_arch": [16]})
    InitFromPretrained(str(tmp_path / "level.zip")).init_callback(model)

    observations = th.as_tensor(np.random.default_rng(0).normal(size=(64, 4)), dtype=th.float32)
    with th.no_grad():
        actions = model.actor(observations, deterministic=True)
        th.testing.assert_close(actions, pretrained.actor(observations[:, :2], deterministic=True))
        for critic, pretrained_critic in ((model.critic, pretrained.critic), (model.critic_target, pretrained.critic_target)):
            q_new, q_old = critic(observations, actions), pretrained_critic(observations[:, :2], actions)
            th.testing.assert_close(th.cat(q_new), th.cat(q_old))


def test_a_pretrained_model_of_another_shape_is_refused_by_name(tmp_path: Path) -> None:
    SAC("MlpPolicy", "sb3_lsp/PointCrossMaze-v0", buffer_size=10, policy_kwargs={"net_arch": [16]}).save(tmp_path / "wide.zip")
    narrow = SAC("MlpPolicy", "sb3_lsp/PointAnyDirection-v0", buffer_size=10, policy_kwargs={"net_arch": [16]})
    with pytest.raises(
        ValueError, match=r"Cannot initialise actor\.latent_pi\.0\.weight of shape \(16, 2\) from shape \(16, 4\)"
    ):
        InitFromPretrained(str(tmp_path / "wide.zip")).init_callback(narrow)


def test_a_yaml_entry_evaluates_with_eval_on_env_under_rl_zoo3_train(tmp_path: Path) -> None:
    """The README's ``callback:`` entry, as a user runs it: ``python -m rl_zoo3.train`` with ``--gym-packages sb3_lsp``."""
    evaluation = {"env": {"env_id": "sb3_lsp/PointCrossMaze-v0", "seed": 10_000}, "eval_freq": 150, "n_eval_episodes": 2}
    entry = {
        "policy": "LSPPolicy",
        "n_timesteps": 300,
        "learning_starts": 100,
        "batch_size": 32,
        "policy_kwargs": {"net_arch": [16]},
        "callback": [{"sb3_lsp.zoo.callbacks.EvalOnEnv": evaluation | {"log_path": str(tmp_path / "eval")}}],
    }
    (tmp_path / "maze.yml").write_text(yaml.safe_dump({"sb3_lsp/PointCrossMaze-v0": entry}))
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", "sb3_lsp/PointCrossMaze-v0"]
    command += [
        "-conf",
        str(tmp_path / "maze.yml"),
        "--gym-packages",
        "sb3_lsp",
        "-f",
        str(tmp_path / "logs"),
        "--device",
        "cpu",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    evaluations = np.load(tmp_path / "eval" / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [150, 300]
    assert evaluations["results"].shape == evaluations["distance_to_goal"].shape == evaluations["successes"].shape == (2, 2)
    assert (evaluations["distance_to_goal"] > 0).all()
