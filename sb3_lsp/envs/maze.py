"""
The cross maze of the 2018 SAC-LSP code, shared by the Ant and the Point bodies.

A plus-shaped corridor network of 1 m thick, 2 m tall walls. The body starts at the origin in
a corridor running east (back wall at x = -2, side walls at y = +-2.5); the corridor opens at
x ~ 4..8 into a junction with a north and a south arm (walls at x = 3.5 and 8.5, capped at
y = +-7.5) and an east arm (walls at y = +-2.5, capped at x = 13.5). The free space is therefore
y in (-2, 2) for x in (-1.5, 13), and x in (4, 8) for y in (-7, 7).
"""

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: Goals (x, y) of the paper's three experiments, selected by index with ``goal=0/1/2``.
GOALS: tuple[tuple[float, float], ...] = ((6.0, -6.0), (6.0, 6.0), (12.0, 0.0))
#: Sparse reward paid on reaching the goal (the episode then terminates).
GOAL_REWARD = 1000.0
#: The paper's success radius in metres.
DEFAULT_GOAL_RADIUS = 2.0
WALL_HEIGHT = 2.0


@dataclass(frozen=True)
class Wall:
    """
    An axis-aligned box wall.

    :param name: Geom name in the MJCF model.
    :param center: (x, y) of the box centre.
    :param half_size: (x, y) half-extents of the box.
    """

    name: str
    center: tuple[float, float]
    half_size: tuple[float, float]


# Each wall is 1 m thick (half-size 0.5) around the line the paper gives; the caps and end walls
# reach 0.5 m past the side walls so that the corners are closed.
WALLS: tuple[Wall, ...] = (
    Wall("wall_back", (-2.0, 0.0), (0.5, 3.0)),
    Wall("wall_start_north", (1.0, 2.5), (3.0, 0.5)),
    Wall("wall_start_south", (1.0, -2.5), (3.0, 0.5)),
    Wall("wall_north_arm_west", (3.5, 5.0), (0.5, 2.5)),
    Wall("wall_north_arm_east", (8.5, 5.0), (0.5, 2.5)),
    Wall("wall_north_cap", (6.0, 7.5), (3.0, 0.5)),
    Wall("wall_south_arm_west", (3.5, -5.0), (0.5, 2.5)),
    Wall("wall_south_arm_east", (8.5, -5.0), (0.5, 2.5)),
    Wall("wall_south_cap", (6.0, -7.5), (3.0, 0.5)),
    Wall("wall_east_arm_north", (11.0, 2.5), (3.0, 0.5)),
    Wall("wall_east_arm_south", (11.0, -2.5), (3.0, 0.5)),
    Wall("wall_east_cap", (13.5, 0.0), (0.5, 3.0)),
)


def add_walls(mjcf: str) -> str:
    """
    Add the maze walls to an MJCF model's worldbody.

    :param mjcf: MJCF XML text of the body's open-arena model.
    :return: The same model with the :data:`WALLS` as static box geoms.
    """
    root = ET.fromstring(mjcf)
    worldbody = root.find("worldbody")
    assert worldbody is not None, "MJCF model has no <worldbody>"
    for wall in WALLS:
        ET.SubElement(
            worldbody,
            "geom",
            name=wall.name,
            type="box",
            pos=f"{wall.center[0]} {wall.center[1]} {WALL_HEIGHT / 2}",
            size=f"{wall.half_size[0]} {wall.half_size[1]} {WALL_HEIGHT / 2}",
            # contype/conaffinity 1: collide with every body geom (the Ant's have conaffinity 0).
            contype="1",
            conaffinity="1",
            condim="3",
            rgba="0.4 0.4 0.4 1",
        )
    return ET.tostring(root, encoding="unicode")


@contextmanager
def mjcf_file(mjcf: str) -> Iterator[str]:
    """
    Write MJCF text to a temporary file for as long as the context lasts.

    Gymnasium's :class:`~gymnasium.envs.mujoco.MujocoEnv` loads its model from a path; the model
    is compiled during ``__init__``, after which the file is no longer needed.

    :param mjcf: MJCF XML text.
    :return: Context yielding the absolute path of the file.
    """
    with tempfile.TemporaryDirectory(prefix="sb3_lsp_") as directory:
        path = os.path.join(directory, "model.xml")
        with open(path, "w") as f:
            f.write(mjcf)
        yield path


def resolve_goal(goal: int | Sequence[float]) -> np.ndarray:
    """
    Turn the ``goal`` argument of a maze environment into an (x, y) array.

    :param goal: Index into :data:`GOALS` (0, 1 or 2) or any (x, y).
    :return: The goal position, shape (2,).
    """
    if isinstance(goal, (int, np.integer)):
        if not 0 <= goal < len(GOALS):
            raise ValueError(f"goal index must be in 0..{len(GOALS) - 1}, got {goal}; or pass an (x, y) pair")
        return np.array(GOALS[goal], dtype=np.float64)
    position = np.asarray(goal, dtype=np.float64)
    if position.shape != (2,):
        raise ValueError(f"goal must be an index or an (x, y) pair, got {goal!r}")
    return position


class CrossMazeTask:
    """
    Goal reward and termination of the cross maze, independent of the body.

    :param goal: Index into :data:`GOALS` or any (x, y).
    :param goal_radius: The goal is reached within this distance (metres).
    :param reward_type: ``"sparse"`` (the paper's: 1000 at the goal, else 0) or ``"dense"``
        (negative distance to the goal, for diagnostics).
    """

    def __init__(
        self,
        goal: int | Sequence[float] = 0,
        goal_radius: float = DEFAULT_GOAL_RADIUS,
        reward_type: Literal["sparse", "dense"] = "sparse",
    ) -> None:
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        self.goal = resolve_goal(goal)
        self.goal_radius = float(goal_radius)
        self.reward_type = reward_type

    def __call__(self, xy: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """
        Score a body position.

        :param xy: The body's (x, y).
        :return: Reward, whether the goal is reached (the episode terminates), and the info
            entries ``is_success`` and ``distance_to_goal``.
        """
        distance = float(np.linalg.norm(xy - self.goal))
        reached = distance <= self.goal_radius
        if self.reward_type == "sparse":
            reward = GOAL_REWARD if reached else 0.0
        else:
            reward = -distance
        return reward, reached, {"is_success": reached, "distance_to_goal": distance}


class CrossMazeMixin:
    """
    Turns a body's any-direction environment into its cross-maze task (put it first in the bases).

    Appends the body's x, y to the observation, replaces the reward by the task's, terminates at
    the goal and adds ``is_success`` and ``distance_to_goal`` to ``info`` (at reset too). The
    subclass sets ``self.task`` (a :class:`CrossMazeTask`) before the body's ``__init__``.
    """

    task: CrossMazeTask
    data: Any

    def _get_obs(self) -> np.ndarray:
        return np.concatenate((super()._get_obs(), self.data.qpos[:2]))  # type: ignore[misc]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """
        Step the body and score its position against the goal.

        :param action: The body's action.
        :return: Observation, goal reward, terminated (also at the goal), truncated, info.
        """
        observation, _, terminated, truncated, info = super().step(action)  # type: ignore[misc]
        reward, reached, goal_info = self.task(self.data.qpos[:2])
        info.update(goal_info)
        return observation, reward, terminated or reached, truncated, info

    def _get_reset_info(self) -> dict[str, Any]:
        info = super()._get_reset_info()  # type: ignore[misc]
        info.update(self.task(self.data.qpos[:2])[2])
        return info
