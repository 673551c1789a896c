"""``InfoEvalCallback``: SB3's ``EvalCallback`` that also keeps what the final ``info`` of each episode reports."""

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.vec_env import VecEnv


class InfoEvalCallback(EvalCallback):
    """
    SB3's :class:`~stable_baselines3.common.callbacks.EvalCallback`, evaluating and writing
    ``evaluations.npz`` exactly as it does (``timesteps``, ``results``, ``ep_lengths`` and, where
    the environment reports ``is_success``, ``successes``), plus, in the same file:

    - for each key of ``info_keys`` the environment reports, the value in the final ``info`` of
      every evaluation episode, shape ``(n_evaluations, n_eval_episodes)`` like ``successes``
      (the mazes' ``distance_to_goal``: how close an episode that missed the goal came);
    - ``wall_time_s``: seconds since training started, at each evaluation.

    Training ends with one more evaluation when its last step was not one (a budget that is not a
    multiple of ``eval_freq``), so the last row is always the final policy. Each evaluation prints
    one line, ``"{label}: step N, return mean ± std"``: the progress of a run among many in one console.

    :param eval_env: The environment to evaluate in (as for ``EvalCallback``).
    :param info_keys: Keys of the final ``info`` to record (numbers; episodes without the key are skipped).
    :param label: Names the run in the progress lines.
    :param kwargs: ``EvalCallback``'s other arguments (``n_eval_episodes``, ``eval_freq``, ``log_path``, ...).
    """

    def __init__(
        self,
        eval_env: VecEnv,
        info_keys: Sequence[str] = ("distance_to_goal",),
        label: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(eval_env, **kwargs)
        self.info_keys = tuple(info_keys)
        self.label = label
        self.evaluations_info: dict[str, list[list[float]]] = {key: [] for key in self.info_keys}
        self.evaluations_wall_time: list[float] = []
        self._final_info_buffer: dict[str, list[float]] = {key: [] for key in self.info_keys}
        self._start = time.perf_counter()

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()

    def _on_training_end(self) -> None:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq != 0:
            # EvalCallback evaluates when n_calls is a multiple of eval_freq: make it one for this call
            # only, so that a later learn(..., reset_num_timesteps=False) keeps its schedule
            n_calls = self.n_calls
            self.n_calls = self.eval_freq
            self._on_step()
            self.n_calls = n_calls

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        if locals_["done"]:
            for key in self.info_keys:
                if key in locals_["info"]:
                    self._final_info_buffer[key].append(float(locals_["info"][key]))

    def _on_step(self) -> bool:
        evaluating = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
        if not evaluating:  # every training step comes here: nothing to do between evaluations
            return super()._on_step()
        self._final_info_buffer = {key: [] for key in self.info_keys}
        continue_training = super()._on_step()
        self.evaluations_wall_time.append(round(time.perf_counter() - self._start, 2))
        for key, values in self._final_info_buffer.items():
            if values:
                self.evaluations_info[key].append(values)
        if self.log_path is None:
            print(f"{self.label}: step {self.num_timesteps}, return {self.last_mean_reward:.1f}", flush=True)
            return continue_training
        # EvalCallback has just written its arrays (np.savez appends .npz); the file gains ours beside them
        path = self.log_path if self.log_path.endswith(".npz") else f"{self.log_path}.npz"
        with np.load(path) as written:
            arrays = dict(written)
        extra = {key: values for key, values in self.evaluations_info.items() if values}
        np.savez(path, **arrays, **extra, wall_time_s=self.evaluations_wall_time)
        returns = self.evaluations_results[-1]
        print(f"{self.label}: step {self.num_timesteps}, return {np.mean(returns):.1f} ± {np.std(returns):.1f}", flush=True)
        return continue_training
