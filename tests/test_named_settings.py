"""The named settings in hyperparams/: the paper's appendix text and the authors' released code."""

from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from stable_baselines3 import SAC
from stable_baselines3.common.preprocessing import get_action_dim

import sb3_lsp  # noqa: F401

HYPERPARAMS = Path(__file__).parents[1] / "hyperparams"
MUJOCO = ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5"]


def build(file: str, env_id: str) -> SAC:
    entry = yaml.safe_load((HYPERPARAMS / file).read_text())[env_id]
    kwargs = {k: v for k, v in entry.items() if k not in {"n_timesteps", "policy"}} | {"buffer_size": 100}
    return SAC(entry["policy"].removeprefix("sb3_lsp."), gym.make(env_id), **kwargs)  # the RL Zoo resolves the path


@pytest.mark.parametrize("env_id", MUJOCO)
def test_released_code_settings(env_id: str) -> None:
    model = build("sac_lsp_released.yml", env_id)
    actor, action_dim = model.actor, get_action_dim(model.action_space)
    # 256-256 embedding of size 2|A| with a ReLU on its output, s/t networks of |A|, 2 couplings
    embedding = (actor.embedding_net_arch, actor.embedding_dim, actor.embedding_output_activation)
    assert embedding == ([256, 256], 2 * action_dim, True)
    assert (actor.coupling_net_arch, actor.n_coupling_layers) == ([action_dim], 2)
    assert isinstance(actor.embedding[-1], type(actor.embedding[1]))  # the output goes through the ReLU
    assert (model.batch_size, model.tau, model.policy.critic_kwargs["net_arch"]) == (256, 0.005, [256, 256])
    # a fixed temperature: 1 / reward scale (5, 20 on Humanoid, 25 on Swimmer)
    assert model.ent_coef_optimizer is None
    assert model.ent_coef_tensor.item() == pytest.approx({"Humanoid-v5": 0.05, "Swimmer-v5": 0.04}.get(env_id, 0.2))
    assert model.learning_starts == (10000 if env_id in {"HalfCheetah-v5", "Ant-v5"} else 1000)


@pytest.mark.parametrize("env_id", MUJOCO)
def test_paper_text_settings(env_id: str) -> None:
    model = build("sac_lsp.yml", env_id)
    actor, action_dim = model.actor, get_action_dim(model.action_space)
    embedding = (actor.embedding_net_arch, actor.embedding_dim, actor.embedding_output_activation)
    assert embedding == ([128, 128], 2 * action_dim, False)
    assert (actor.coupling_net_arch, actor.n_coupling_layers) == ([action_dim], 2)
    assert (model.batch_size, model.tau, model.policy.critic_kwargs["net_arch"]) == (128, 0.01, [128, 128])
    assert model.ent_coef_optimizer is not None  # learned
