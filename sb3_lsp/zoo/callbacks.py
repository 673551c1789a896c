"""
Callbacks for an RL Zoo YAML entry's ``callback:`` list, whose entries rl_zoo3 builds from plain
keyword arguments (``{sb3_lsp.zoo.callbacks.EvalOnEnv: {env: {...}, eval_freq: 5000}}``): the
package's evaluation and diagnostics, each on an environment it builds itself, and the start from a
pretrained model. The benchmark harness (``python -m benchmarks.run``) trains every run through them.

rl_zoo3's own evaluation (``--eval-freq``) seeds its environment with the training seed and knows
no final ``info`` (the mazes' ``distance_to_goal``); these callbacks take the environment's seed
and settings from the YAML, and :class:`EvalOnEnv` is :class:`~sb3_lsp.InfoEvalCallback`.
"""

from pathlib import Path
from typing import Any

import torch as th
from rl_zoo3.utils import create_test_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

from sb3_lsp.diagnostics import SACDiagnostics
from sb3_lsp.evaluation import InfoEvalCallback


def make_env(env_id: str, seed: int, env_kwargs: dict[str, Any] | None = None, env_wrapper: list[Any] | None = None) -> VecEnv:
    """
    One environment as rl_zoo3 builds a training one: ``Monitor`` on the raw environment, under
    ``env_wrapper`` (RL Zoo syntax), so that returns are the raw environment's whatever the wrappers do.

    :param env_id: Environment id.
    :param seed: Its seed.
    :param env_kwargs: Keyword arguments of ``gym.make``.
    :param env_wrapper: The YAML entry's ``env_wrapper`` list.
    """
    hyperparams = {"env_wrapper": env_wrapper} if env_wrapper else {}
    return create_test_env(env_id, seed=seed, should_render=False, hyperparams=hyperparams, env_kwargs=env_kwargs)


class EvalOnEnv(InfoEvalCallback):
    """
    :class:`~sb3_lsp.InfoEvalCallback` (SB3's ``EvalCallback`` writing ``evaluations.npz``, plus the
    final ``info``'s ``distance_to_goal`` and the wall time) on an environment given by its settings.

    :param env: :func:`make_env`'s arguments: ``{env_id, seed, env_kwargs, env_wrapper}``.
    :param kwargs: ``InfoEvalCallback``'s (and ``EvalCallback``'s) other arguments.
    """

    def __init__(self, env: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(make_env(**env), **kwargs)


class DiagnosticsOnEnv(SACDiagnostics):
    """
    :class:`~sb3_lsp.SACDiagnostics` on an environment given by its settings.

    :param env: :func:`make_env`'s arguments: ``{env_id, seed, env_kwargs, env_wrapper}``.
    :param csv_path: Where its rows go.
    :param kwargs: ``SACDiagnostics``'s other arguments (``every``, ``episodes``, ``n_samples``).
    """

    def __init__(self, env: dict[str, Any], csv_path: str, **kwargs: Any) -> None:
        super().__init__(make_env(**env), csv_path=Path(csv_path), **kwargs)


class InitFromPretrained(BaseCallback):
    """
    Start training from a pretrained model's policy (actor, critics, target critics): fine-tuning.

    Where the new observation has extra entries appended (the maze's x, y after the
    proprioception the pretrained level saw), the first layers reading it get zero weights for
    them: the fine-tuned policy starts as exactly the pretrained one and learns to use them.
    Loaded when training starts, before the first action.

    :param model: Path of the pretrained model's ``.zip``.
    """

    def __init__(self, model: str) -> None:
        super().__init__()
        self.pretrained_zip = Path(model)

    def _init_callback(self) -> None:
        _, params, _ = load_from_zip_file(self.pretrained_zip, device="cpu")
        assert params is not None
        new_obs_dim = self.model.observation_space.shape[0]
        target = self.model.policy.state_dict()
        for key, old in params["policy"].items():
            new = target[key]
            if isinstance(old, th.Tensor) and old.shape != new.shape:  # not the actor's flow settings
                extra = new.shape[-1] - old.shape[-1]
                if old.dim() != 2 or old.shape[0] != new.shape[0] or extra <= 0:
                    raise ValueError(f"Cannot initialise {key} of shape {tuple(new.shape)} from shape {tuple(old.shape)}.")
                old_obs_dim = new_obs_dim - extra  # inputs are [obs, (actions)]: new obs entries go after the old ones
                old = th.cat([old[:, :old_obs_dim], th.zeros(old.shape[0], extra), old[:, old_obs_dim:]], dim=1)
            target[key] = old
        self.model.policy.load_state_dict(target)

    def _on_step(self) -> bool:
        return True
