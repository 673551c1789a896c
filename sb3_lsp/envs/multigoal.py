"""
The multi-goal task of Haarnoja et al. 2017 ("Reinforcement Learning with Deep Energy-Based
Policies", section 5.1): a task with four equally good solutions, to see a policy's modes.

A 2-D point mass starts near the origin and moves by its action, a velocity in the unit box:
``x' = clip(x + a, -7, 7)``. Four goals sit symmetrically at ``(+-5, 0)`` and ``(0, +-5)``. The
reward, as in the authors' released code (softqlearning, ``MultiGoalEnv``), is
``-30 ||a||^2 - min_g ||x' - g||^2``, plus 10 and the end of the episode on coming within 1 of a
goal. Episodes last at most 30 steps (registered with ``max_episode_steps=30``, as in that paper's
experiment). ``info["goal"]`` is the index of the goal reached (``-1`` while none is).
"""

from typing import Any

import numpy as np
from gymnasium import Env
from gymnasium.spaces import Box

#: Goal positions, index 0 to 3: east, west, north, south.
MULTIGOAL_GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])


class MultiGoalEnv(Env):
    """
    :param goal_reward: Bonus on reaching a goal (the episode then ends).
    :param actuation_cost_coeff: Weight of ``||a||^2``.
    :param distance_cost_coeff: Weight of the squared distance to the closest goal.
    :param init_sigma: Standard deviation of the start position around the origin.
    :param goal_threshold: Distance to a goal's centre that counts as reaching it.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        goal_reward: float = 10.0,
        actuation_cost_coeff: float = 30.0,
        distance_cost_coeff: float = 1.0,
        init_sigma: float = 0.1,
        goal_threshold: float = 1.0,
    ) -> None:
        self.goal_reward = goal_reward
        self.actuation_cost_coeff = actuation_cost_coeff
        self.distance_cost_coeff = distance_cost_coeff
        self.init_sigma = init_sigma
        self.goal_threshold = goal_threshold
        self.observation_space = Box(-7.0, 7.0, (2,), np.float32)
        self.action_space = Box(-1.0, 1.0, (2,), np.float32)
        self._position = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._position = np.clip(self.init_sigma * self.np_random.normal(size=2), -7.0, 7.0)
        return self._position.astype(np.float32), {"goal": -1}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float64).ravel(), -1.0, 1.0)
        self._position = np.clip(self._position + action, -7.0, 7.0)
        distances = np.linalg.norm(MULTIGOAL_GOALS - self._position, axis=1)
        reward = -self.actuation_cost_coeff * float(action @ action) - self.distance_cost_coeff * float(distances.min() ** 2)
        reached = bool(distances.min() < self.goal_threshold)
        if reached:
            reward += self.goal_reward
        info = {"goal": int(distances.argmin()) if reached else -1, "is_success": reached}
        return self._position.astype(np.float32), reward, reached, False, info
