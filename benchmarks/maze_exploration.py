"""
Does the Point maze need exploration? One training run on sb3_lsp/PointCrossMaze-v0, counting how
many training episodes reach the goal: level 1 of a hierarchy on a trained level 0, or flat SAC
(+ LSPPolicy) from scratch, each action held for --repeat maze steps. These runs chose the maze's
episode length and the control interval of hyperparams/hierarchy_point_maze.yml.

    python -m benchmarks.maze_exploration --mode hierarchy --level0 LEVEL0_RUN_FOLDER_OR_ZIP
    python -m benchmarks.maze_exploration --mode flat --repeat 1 --decisions 50000 [--log-folder logs]

Each is an ``rl_zoo3.train`` run of the Point entry of ``hyperparams/sac_lsp.yml``; the count comes
from its Monitor CSV (an episode reaches the goal when its task reward is positive).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.monitor import load_results

from benchmarks.grid import ZOO_RUN_KEYS
from sb3_lsp.settings import with_zoo_entry
from sb3_lsp.zoo.layerwise import WRAPPER_CLASS, train_zoo_run

ENV_ID = "sb3_lsp/PointCrossMaze-v0"


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
    parser.add_argument("--log-folder", type=Path, default=None, help="rl_zoo3's -f folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.mode == "hierarchy" and args.level0 is None:
        parser.error("--mode hierarchy needs --level0 (a level-0 run folder or .zip)")

    # The Point settings of hyperparams/sac_lsp.yml, which hierarchy_point_maze.yml and point_maze.yml use too
    # (discount left at SAC's 0.99, with which these runs were made)
    point = {"zoo": {"file": "sac_lsp.yml", "env": "sb3_lsp/PointAnyDirection-v0"}}
    entry = {
        "policy": "LSPPolicy",
        "n_timesteps": args.decisions,
        **with_zoo_entry(point, "maze_exploration", without=ZOO_RUN_KEYS),
    }
    if args.mode == "hierarchy":
        wrapper = {WRAPPER_CLASS: dict(lower=args.level0, lower_obs=2, action_repeat=args.repeat, prior_coef=args.prior_coef)}
    else:
        wrapper = {"rl_zoo3.wrappers.FrameSkip": {"skip": args.repeat}}
    # rl_zoo3's Monitor sits under the wrappers: its CSV counts maze steps and the task reward alone
    entry["env_wrapper"] = [wrapper]
    entry["env_kwargs"] = {"goal": args.goal, "max_episode_steps": args.episode_steps}
    zoo_args = ["--eval-freq", "-1", "--device", "cpu", "--num-threads", "1", "--verbose", "0"]
    with tempfile.TemporaryDirectory(prefix="maze_exploration_") as scratch:
        start = time.perf_counter()
        run = train_zoo_run(
            ENV_ID, "sac", entry, args.log_folder or Path(scratch), args.seed, zoo_args, f"maze_exploration {args.mode}"
        )
        wall_s = time.perf_counter() - start
        successes = load_results(str(run))["r"].to_numpy() > 0
    first = int(np.argmax(successes)) + 1 if successes.any() else None
    print(
        f"{args.mode} repeat {args.repeat}, {args.episode_steps}-step episodes, goal {args.goal}, seed {args.seed}: "
        f"{successes.sum()} of {len(successes)} training episodes reached the goal (first: episode {first}); "
        f"{args.decisions} decisions in {wall_s:.0f} s (run folder: {run if args.log_folder else 'deleted'})"
    )


if __name__ == "__main__":
    main()
