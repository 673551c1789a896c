"""
The paper's environments as Gymnasium environments, registered under ``sb3_lsp/`` on ``import sb3_lsp``.

========================================  ==================  ==============  =========
id                                        observation         (D_s first)     max steps
========================================  ==================  ==============  =========
``sb3_lsp/AntAnyDirection-v0``            proprioception      105             1000
``sb3_lsp/AntCrossMaze-v0``               proprioception, xy  105 + 2 = 107   1000
``sb3_lsp/PointAnyDirection-v0``          vx, vy              2               250
``sb3_lsp/PointCrossMaze-v0``             vx, vy, x, y        2 + 2 = 4       250
``sb3_lsp/MultiGoal-v0``                  x, y                                30
========================================  ==================  ==============  =========

The maze environments take ``goal`` (0, 1, 2 or any (x, y)), ``goal_radius`` and ``reward_type``
keyword arguments, e.g. ``gymnasium.make("sb3_lsp/PointCrossMaze-v0", goal=2)``.
``sb3_lsp/MultiGoal-v0`` is the four-goal task of Haarnoja et al. 2017 (:mod:`sb3_lsp.envs.multigoal`).
:class:`InfoReward` adds weighted ``info`` entries to the reward (the shaped maze baselines).
"""

import gymnasium

from sb3_lsp.envs.ant import AntAnyDirectionEnv, AntCrossMazeEnv
from sb3_lsp.envs.maze import GOALS, WALLS, CrossMazeTask
from sb3_lsp.envs.multigoal import MULTIGOAL_GOALS, MultiGoalEnv
from sb3_lsp.envs.point import PointAnyDirectionEnv, PointCrossMazeEnv
from sb3_lsp.envs.shaping import InfoReward

#: id -> (entry point, max_episode_steps). The Point's episodes are shorter than the Ant's
#: because it is faster (2 m/s at 20 Hz crosses the maze in ~150 steps) and CPU budgets are small.
#: Its maze episodes (12.5 s) leave time to reach every goal with a consistent heading, but not
#: by a random walk: with 500 steps flat SAC found goal 0 by chance within 50k steps (2 of 2 seeds
#: measured), with 250 it did not (0 of 5 runs), while the hierarchy did (benchmarks/RESULTS.md).
ENV_SPECS: dict[str, tuple[str, int]] = {
    "sb3_lsp/AntAnyDirection-v0": ("sb3_lsp.envs.ant:AntAnyDirectionEnv", 1000),
    "sb3_lsp/AntCrossMaze-v0": ("sb3_lsp.envs.ant:AntCrossMazeEnv", 1000),
    "sb3_lsp/PointAnyDirection-v0": ("sb3_lsp.envs.point:PointAnyDirectionEnv", 250),
    "sb3_lsp/PointCrossMaze-v0": ("sb3_lsp.envs.point:PointCrossMazeEnv", 250),
    "sb3_lsp/MultiGoal-v0": ("sb3_lsp.envs.multigoal:MultiGoalEnv", 30),
}


def register_envs() -> None:
    """Register the environments of :data:`ENV_SPECS` with Gymnasium (ids already registered are kept)."""
    for env_id, (entry_point, max_episode_steps) in ENV_SPECS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps)


__all__ = [
    "ENV_SPECS",
    "GOALS",
    "MULTIGOAL_GOALS",
    "WALLS",
    "AntAnyDirectionEnv",
    "AntCrossMazeEnv",
    "CrossMazeTask",
    "InfoReward",
    "MultiGoalEnv",
    "PointAnyDirectionEnv",
    "PointCrossMazeEnv",
    "register_envs",
]
