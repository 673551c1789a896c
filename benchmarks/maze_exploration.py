"""
Does the Point maze need exploration? One training run on sb3_lsp/PointCrossMaze-v0, counting how
many training episodes reach the goal: level 1 of a hierarchy on a trained level 0, or flat SAC
(+ LSPPolicy) from scratch, each action held for --repeat maze steps. These runs chose the maze's
episode length and the control interval of hyperparams/hierarchy_point_maze.yml.

    python -m benchmarks.maze_exploration --mode hierarchy --level0 LEVEL0_RUN_FOLDER_OR_ZIP
    python -m benchmarks.maze_exploration --mode flat --repeat 1 --decisions 50000
"""

import argparse
import time

import gymnasium as gym
import numpy as np
import torch as th
from rl_zoo3.wrappers import FrameSkip
from stable_baselines3 import SAC
from stable_baselines3.common.monitor import Monitor

import sb3_lsp
from benchmarks.grid import ZOO_RUN_KEYS
from sb3_lsp.settings import with_zoo_entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("hierarchy", "flat"), required=True)
    parser.add_argument("--level0", help="level-0 run folder or .zip (hierarchy mode)")
    parser.add_argument("--repeat", type=int, default=10, help="maze steps per decision")
    parser.add_argument("--decisions", type=int, default=5000, help="training budget, in decisions")
    parser.add_argument("--episode-steps", type=int, default=250, help="maze steps per episode")
    parser.add_argument("--goal", type=int, default=0)
    parser.add_argument("--prior-coef", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    th.set_num_threads(1)

    # Monitor sits under the wrappers: it counts maze steps and the task reward alone.
    monitor = Monitor(gym.make("sb3_lsp/PointCrossMaze-v0", goal=args.goal, max_episode_steps=args.episode_steps))
    if args.mode == "hierarchy":
        env = sb3_lsp.LatentActionWrapper(
            monitor, args.level0, lower_obs=2, action_repeat=args.repeat, prior_coef=args.prior_coef
        )
    else:
        env = FrameSkip(monitor, skip=args.repeat)
    # The Point settings of hyperparams/sac_lsp.yml, which hierarchy_point_maze.yml and point_maze.yml use too
    # (discount left at SAC's 0.99, with which these runs were made)
    point = {"zoo": {"file": "sac_lsp.yml", "env": "sb3_lsp/PointAnyDirection-v0"}}
    settings = with_zoo_entry(point, "maze_exploration", without=ZOO_RUN_KEYS)
    model = SAC("LSPPolicy", env, seed=args.seed, **settings)
    start = time.perf_counter()
    model.learn(args.decisions)
    successes = np.array(monitor.get_episode_rewards()) > 0
    first = int(np.argmax(successes)) + 1 if successes.any() else None
    print(
        f"{args.mode} repeat {args.repeat}, {args.episode_steps}-step episodes, goal {args.goal}, seed {args.seed}: "
        f"{successes.sum()} of {len(successes)} training episodes reached the goal (first: episode {first}); "
        f"{args.decisions} decisions in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
