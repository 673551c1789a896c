"""Gymnasium's Ant-v5 body on the paper's two tasks: any-direction locomotion and the cross maze."""

import os
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium.envs.mujoco
import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.spaces import Box

from sb3_lsp.envs.maze import DEFAULT_GOAL_RADIUS, CrossMazeMixin, CrossMazeTask, add_walls, mjcf_file

#: Gymnasium's own Ant model; the maze version adds the walls to it.
ANT_XML = os.path.join(os.path.dirname(gymnasium.envs.mujoco.__file__), "assets", "ant.xml")


class AntAnyDirectionEnv(AntEnv):
    """
    Ant-v5 rewarded for its speed in any direction (the paper's low-level pretraining task).

    ``reward = ||v_xy of the torso|| + 0.05 - 0.005 ||a||^2 - 0.0005 sum(clip(cfrc_ext, -1, 1)^2)``;
    the episode terminates when the state is not finite or the torso z leaves [0.2, 1.0].
    Ant-v5's floor is an infinite plane, so the arena is open. The observation is Ant-v5's
    default, which already excludes x, y: qpos[2:] (13), qvel (14), clipped external contact
    forces of the 13 bodies (78), 105 entries in all.

    :param ctrl_cost_weight: Weight of ``||a||^2``.
    :param contact_cost_weight: Weight of the clipped contact forces' squared sum.
    :param healthy_reward: Survival bonus per step while healthy.
    :param healthy_z_range: Torso heights outside which the episode terminates.
    :param kwargs: Every other :class:`gymnasium.envs.mujoco.ant_v5.AntEnv` argument
        (``xml_file``, ``frame_skip``, ``reset_noise_scale``, ``render_mode``, ...).
    """

    def __init__(
        self,
        ctrl_cost_weight: float = 0.005,
        contact_cost_weight: float = 5e-4,
        healthy_reward: float = 0.05,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            # Ant-v5 rewards the x velocity; it is zeroed here and the speed added in step().
            forward_reward_weight=0.0,
            ctrl_cost_weight=ctrl_cost_weight,
            contact_cost_weight=contact_cost_weight,
            healthy_reward=healthy_reward,
            healthy_z_range=healthy_z_range,
            contact_force_range=(-1.0, 1.0),
            exclude_current_positions_from_observation=True,
            include_cfrc_ext_in_observation=True,
            **kwargs,
        )
        utils.EzPickle.__init__(self, ctrl_cost_weight, contact_cost_weight, healthy_reward, healthy_z_range, **kwargs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """
        Step Ant-v5 and add the torso's planar speed to its (survival, control, contact) reward.

        :param action: Torques of the 8 hinges, in [-1, 1].
        :return: Observation, reward, terminated, truncated, info (``reward_speed`` replaces
            Ant-v5's ``reward_forward``).
        """
        observation, reward, terminated, truncated, info = super().step(action)
        speed = float(np.hypot(info["x_velocity"], info["y_velocity"]))
        del info["reward_forward"]
        info["reward_speed"] = speed
        return observation, float(reward) + speed, terminated, truncated, info


class AntCrossMazeEnv(CrossMazeMixin, AntAnyDirectionEnv):
    """
    The Ant in the paper's cross maze (see :mod:`sb3_lsp.envs.maze`), with a fixed goal.

    Sparse reward 1000 within ``goal_radius`` of the goal, 0 otherwise; the episode terminates at
    the goal (and, as in the pretraining task, when the Ant is unhealthy). The observation is
    :class:`AntAnyDirectionEnv`'s 105 entries followed by the torso's x, y (107 in all), so a
    level 0 trained on AntAnyDirection reads the first 105 entries. ``info`` carries
    ``is_success`` and ``distance_to_goal``; the locomotion terms stay in ``info`` for diagnostics.

    :param goal: Index into :data:`sb3_lsp.envs.maze.GOALS` (0: (6, -6), 1: (6, 6), 2: (12, 0))
        or any (x, y).
    :param goal_radius: The goal is reached within this distance (metres).
    :param reward_type: ``"sparse"`` (the paper's) or ``"dense"`` (negative distance to the goal).
    :param kwargs: Every other :class:`AntAnyDirectionEnv` argument (not ``xml_file``: the
        maze model is built here).
    """

    def __init__(
        self,
        goal: int | Sequence[float] = 0,
        goal_radius: float = DEFAULT_GOAL_RADIUS,
        reward_type: Literal["sparse", "dense"] = "sparse",
        **kwargs: Any,
    ) -> None:
        self.task = CrossMazeTask(goal, goal_radius, reward_type)
        with open(ANT_XML) as f, mjcf_file(add_walls(f.read())) as xml_file:
            super().__init__(xml_file=xml_file, **kwargs)
        n_proprioceptive = self.observation_space.shape[0]
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=(n_proprioceptive + 2,), dtype=np.float64)
        self.observation_structure["xy"] = 2
        utils.EzPickle.__init__(self, goal, goal_radius, reward_type, **kwargs)
