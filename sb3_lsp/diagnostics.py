"""``SACDiagnostics``: what a user needs to see when an SAC run finds a sparse reward and then loses it."""

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

#: The columns of the CSV file, in order.
DIAGNOSTIC_COLUMNS = (
    "step",
    "ent_coef",
    "entropy",
    "q_start",
    "return_start",
    "episodes",
    "success_share_replay",
    "success_deterministic",
    "success_stochastic",
    "latent_abs_mean",
    "latent_std",
)


class SACDiagnostics(BaseCallback):
    """
    Every ``every`` steps, record (SB3 logger keys ``diagnostics/<column>``, and a CSV row):

    - ``ent_coef``: SAC's entropy coefficient (learned or fixed);
    - ``entropy``: the policy's entropy, ``-mean log pi(a|s)`` of fresh samples at ``n_samples``
      replay observations;
    - ``q_start`` against ``return_start``: the critic's ``Q(s_0, a_0)`` at the start of each training
      episode that ended since the last row, against the discounted return that episode then got
      (``episodes`` of them);
    - ``success_share_replay``: the share of all transitions collected so far that ended an
      episode with ``info["is_success"]`` (the replay buffer's share while it is not full);
    - ``success_deterministic`` and ``success_stochastic``: success over ``episodes`` evaluation
      episodes acting with ``h = 0`` (the mode) and with sampled actions;
    - ``latent_abs_mean`` and ``latent_std``: mean ``|a|`` and std of the actions the policy took
      since the last row, in the units the algorithm sees (for a level above a
      :class:`~sb3_lsp.LatentActionWrapper`, the latents it chose).

    :param eval_env: Environment for the success evaluations (reporting ``info["is_success"]``).
    :param every: Steps between rows.
    :param episodes: Evaluation episodes per mode.
    :param csv_path: Where the rows go (written as they come), or None.
    :param n_samples: Replay observations for the entropy estimate.
    """

    def __init__(
        self, eval_env: VecEnv, every: int, episodes: int, csv_path: Path | None = None, n_samples: int = 256
    ) -> None:
        super().__init__()
        self.eval_env, self.every, self.episodes = eval_env, every, episodes
        self.csv_path, self.n_samples = csv_path, n_samples
        self._starts: list[float | None] = []
        self._returns: list[float] = []
        self._discounts: list[float] = []
        self._finished: list[tuple[float, float]] = []
        self._actions: list[np.ndarray] = []
        self._transitions = 0
        self._successes = 0
        if csv_path is not None:
            with csv_path.open("w", newline="") as file:
                csv.writer(file).writerow(DIAGNOSTIC_COLUMNS)

    def _on_training_start(self) -> None:
        n_envs = self.training_env.num_envs
        self._starts, self._returns, self._discounts = [None] * n_envs, [0.0] * n_envs, [1.0] * n_envs

    def _on_step(self) -> bool:
        # SB3 calls back after env.step and before storing the transition: model._last_obs is still
        # the observation the action was taken in.
        buffer_actions = self.locals["buffer_actions"]
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        self._actions.append(np.asarray(self.locals["actions"], dtype=np.float64))
        for i in range(len(dones)):
            if self._starts[i] is None:
                self._starts[i] = self._q_value(self.model._last_obs, buffer_actions, i)
            self._returns[i] += self._discounts[i] * float(rewards[i])
            self._discounts[i] *= self.model.gamma
            if dones[i]:
                self._finished.append((self._starts[i], self._returns[i]))
                self._successes += bool(infos[i].get("is_success", False))
                self._starts[i], self._returns[i], self._discounts[i] = None, 0.0, 1.0
        self._transitions += len(dones)
        if self.num_timesteps % self.every == 0:
            self.record_row()
        return True

    def _q_value(self, obs: Any, buffer_actions: np.ndarray, index: int) -> float:
        obs_tensor, _ = self.model.policy.obs_to_tensor(_row(obs, index))
        action = th.as_tensor(buffer_actions[index : index + 1], dtype=th.float32, device=self.model.device)
        with th.no_grad():
            values = self.model.critic(obs_tensor, action)
        if isinstance(values, tuple):  # SAC: one Q per critic, and SAC's target takes the smallest
            return float(th.cat(values, dim=1).min(dim=1).values.mean())
        return float(values.mean())  # TQC: the mean of its quantiles

    def _success(self, deterministic: bool) -> float:
        successes: list[float] = []

        def remember(local_vars: dict[str, Any], _: dict[str, Any]) -> None:
            if local_vars["done"]:
                successes.append(float(local_vars["info"].get("is_success", False)))

        evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=deterministic, callback=remember
        )
        return float(np.mean(successes))

    def record_row(self) -> dict[str, float]:
        """Compute one row now, record it in the logger and the CSV file, and return it."""
        model = self.model
        if getattr(model, "log_ent_coef", None) is not None:
            ent_coef = float(th.exp(model.log_ent_coef.detach()))
        else:
            ent_coef = float(model.ent_coef_tensor)
        entropy = float("nan")
        if model.replay_buffer is not None and model.replay_buffer.size() > 0:
            observations = model.replay_buffer.sample(self.n_samples, env=model.get_vec_normalize_env()).observations
            with th.no_grad():
                _, log_prob = model.actor.action_log_prob(observations)
            entropy = float(-log_prob.mean())
        actions = np.concatenate(self._actions) if self._actions else np.zeros((0, 1))
        finished = np.array(self._finished) if self._finished else np.full((1, 2), np.nan)
        row = {
            "step": self.num_timesteps,
            "ent_coef": ent_coef,
            "entropy": entropy,
            "q_start": float(np.mean(finished[:, 0])),
            "return_start": float(np.mean(finished[:, 1])),
            "episodes": len(self._finished),
            "success_share_replay": self._successes / max(self._transitions, 1),
            "success_deterministic": self._success(deterministic=True),
            "success_stochastic": self._success(deterministic=False),
            "latent_abs_mean": float(np.abs(actions).mean()) if actions.size else float("nan"),
            "latent_std": float(actions.std(axis=0).mean()) if actions.size else float("nan"),
        }
        self._finished, self._actions = [], []
        for name, value in row.items():
            if name != "step":
                self.logger.record(f"diagnostics/{name}", value)
        if self.csv_path is not None:
            with self.csv_path.open("a", newline="") as file:
                csv.writer(file).writerow([row[name] for name in DIAGNOSTIC_COLUMNS])
        return row


def _row(obs: Any, index: int) -> Any:
    """Row ``index`` of a VecEnv observation (an array or a dict of arrays), kept as a batch of one."""
    if isinstance(obs, dict):
        return {key: value[index : index + 1] for key, value in obs.items()}
    return obs[index : index + 1]
