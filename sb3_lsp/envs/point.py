"""
A cheap body with momentum on the paper's two tasks, for CPU-sized experiments.

The Point is a 1 kg ball (radius 0.4 m) on two slide joints, x and y, pushed by two motor
forces. Viscous damping on the joints (1 N s/m) gives it a 1 s velocity time constant: a force
held in one direction builds up speed, and a random force sequence averages out, so moving
far needs a consistent policy, which is what a level 0 trained for speed provides. The thrust
is limited to the unit disk before it reaches the motors, so the top speed (2 m/s) is the same
in every direction (a box would let the diagonals go sqrt(2) faster). The ball does not touch
the floor (no friction, no rolling); it collides only with the maze walls.
"""

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

from sb3_lsp.envs.maze import DEFAULT_GOAL_RADIUS, CrossMazeMixin, CrossMazeTask, add_walls, mjcf_file

#: Open-arena model. Its timestep 0.01 s times FRAME_SKIP: 0.05 s (20 Hz) per environment step.
POINT_MJCF = """
<mujoco model="point">
  <compiler angle="radian"/>
  <option timestep="0.01" integrator="implicitfast"/>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256" rgb1="0.2 0.3 0.4" rgb2="0.3 0.4 0.5"/>
    <material name="grid" texture="grid" texrepeat="40 40" reflectance="0.1"/>
  </asset>
  <worldbody>
    <light pos="0 0 10" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="40 40 0.1" material="grid" contype="0" conaffinity="0"/>
    <body name="ball" pos="0 0 0.4">
      <joint name="x" type="slide" axis="1 0 0" damping="1"/>
      <joint name="y" type="slide" axis="0 1 0" damping="1"/>
      <geom name="ball" type="sphere" size="0.4" mass="1" rgba="0.9 0.5 0.1 1" contype="1" conaffinity="1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="force_x" joint="x" gear="2" ctrlrange="-1 1" ctrllimited="true"/>
    <motor name="force_y" joint="y" gear="2" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>
"""

FRAME_SKIP = 5
DEFAULT_CAMERA_CONFIG = {"distance": 30.0, "elevation": -60.0, "lookat": np.array([5.0, 0.0, 0.0])}


class PointAnyDirectionEnv(MujocoEnv, utils.EzPickle):
    """
    The Point rewarded for its speed in any direction, mirroring :class:`~sb3_lsp.envs.ant.AntAnyDirectionEnv`.

    ``reward = ||v_xy|| + 0.05 - 0.005 ||a||^2`` with ``v_xy`` the displacement over the step
    divided by its duration. The body cannot fall, so the episode only terminates if the state
    stops being finite. Observation: the velocity (vx, vy), 2 entries, no position.

    :param ctrl_cost_weight: Weight of ``||a||^2`` (of the action before the unit-disk limit).
    :param survive_reward: Bonus per step.
    :param reset_noise_scale: Half-width of the uniform noise on the start position and standard
        deviation of the Gaussian noise on the start velocity.
    :param initial_speed_range: The episode starts with a speed drawn uniformly from this range, in
        a uniformly drawn direction. A level 0 pretrained from rest alone settles on two or three
        directions; starting it at every heading makes it learn to move fast in all of them.
    :param mjcf: MJCF text of the model (the maze version passes the model with walls).
    :param kwargs: Every other :class:`gymnasium.envs.mujoco.MujocoEnv` argument (``render_mode``,
        ``width``, ``height``, ...).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"], "render_fps": 20}

    def __init__(
        self,
        ctrl_cost_weight: float = 0.005,
        survive_reward: float = 0.05,
        reset_noise_scale: float = 0.1,
        initial_speed_range: tuple[float, float] = (0.0, 2.0),
        mjcf: str = POINT_MJCF,
        **kwargs: Any,
    ) -> None:
        utils.EzPickle.__init__(self, ctrl_cost_weight, survive_reward, reset_noise_scale, initial_speed_range, mjcf, **kwargs)
        self._ctrl_cost_weight = ctrl_cost_weight
        self._survive_reward = survive_reward
        self._reset_noise_scale = reset_noise_scale
        self._initial_speed_range = initial_speed_range
        kwargs.setdefault("default_camera_config", DEFAULT_CAMERA_CONFIG)
        with mjcf_file(mjcf) as model_path:
            MujocoEnv.__init__(
                self,
                model_path,
                FRAME_SKIP,
                observation_space=Box(low=-np.inf, high=np.inf, shape=(2,), dtype=np.float64),
                **kwargs,
            )

    def _get_obs(self) -> np.ndarray:
        return self.data.qvel.copy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """
        Push the ball for one step and reward its planar speed.

        :param action: Force (fx, fy) in [-1, 1]^2, scaled into the unit disk.
        :return: Observation, reward, terminated, truncated, info.
        """
        xy_before = self.data.qpos[:2].copy()
        thrust = np.asarray(action, dtype=np.float64)
        self.do_simulation(thrust / max(1.0, float(np.linalg.norm(thrust))), self.frame_skip)
        xy_velocity = (self.data.qpos[:2] - xy_before) / self.dt
        speed = float(np.linalg.norm(xy_velocity))
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(action)))
        reward = speed + self._survive_reward - ctrl_cost
        terminated = not bool(np.isfinite(self.state_vector()).all())
        info = {
            "x_position": self.data.qpos[0],
            "y_position": self.data.qpos[1],
            "x_velocity": xy_velocity[0],
            "y_velocity": xy_velocity[1],
            "reward_speed": speed,
            "reward_survive": self._survive_reward,
            "reward_ctrl": -ctrl_cost,
        }
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, info

    def reset_model(self) -> np.ndarray:
        noise = self._reset_noise_scale
        qpos = self.init_qpos + self.np_random.uniform(low=-noise, high=noise, size=self.model.nq)
        qvel = self.init_qvel + noise * self.np_random.standard_normal(self.model.nv)
        speed = self.np_random.uniform(*self._initial_speed_range)
        heading = self.np_random.uniform(-np.pi, np.pi)
        qvel[:2] += speed * np.array([np.cos(heading), np.sin(heading)])
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"x_position": self.data.qpos[0], "y_position": self.data.qpos[1]}


class PointCrossMazeEnv(CrossMazeMixin, PointAnyDirectionEnv):
    """
    The Point in the paper's cross maze, mirroring :class:`~sb3_lsp.envs.ant.AntCrossMazeEnv`.

    Same walls, goals and sparse reward (1000 within ``goal_radius``, else 0; the episode
    terminates at the goal). The ball starts at rest (up to the reset noise), like the Ant.
    Observation: :class:`PointAnyDirectionEnv`'s (vx, vy) followed by x, y, 4 entries in all.
    ``info`` carries ``is_success`` and ``distance_to_goal``.

    :param goal: Index into :data:`sb3_lsp.envs.maze.GOALS` (0: (6, -6), 1: (6, 6), 2: (12, 0))
        or any (x, y).
    :param goal_radius: The goal is reached within this distance (metres).
    :param reward_type: ``"sparse"`` (the paper's) or ``"dense"`` (negative distance to the goal).
    :param initial_speed_range: Range of the start speed (see :class:`PointAnyDirectionEnv`).
    :param kwargs: Every other :class:`PointAnyDirectionEnv` argument (not ``mjcf``).
    """

    def __init__(
        self,
        goal: int | Sequence[float] = 0,
        goal_radius: float = DEFAULT_GOAL_RADIUS,
        reward_type: Literal["sparse", "dense"] = "sparse",
        initial_speed_range: tuple[float, float] = (0.0, 0.0),
        **kwargs: Any,
    ) -> None:
        self.task = CrossMazeTask(goal, goal_radius, reward_type)
        super().__init__(initial_speed_range=initial_speed_range, mjcf=add_walls(POINT_MJCF), **kwargs)
        self.observation_space = Box(low=-np.inf, high=np.inf, shape=(4,), dtype=np.float64)
        utils.EzPickle.__init__(self, goal, goal_radius, reward_type, initial_speed_range, **kwargs)
