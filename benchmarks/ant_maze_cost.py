"""What the paper's Ant maze (section 6.3) costs on this machine: measured throughput of each stage.

    python -m benchmarks.ant_maze_cost [--config hyperparams/hierarchy_ant_maze.yml] [--updates 2000] [--decisions 1000]

Reads the full-scale pipeline's config and times, with its exact settings, after `learning_starts`
random steps (not timed), one SAC update per step:
  1. level 0: SAC + LSPPolicy on its env (AntAnyDirection-v0): `--updates` env steps;
  2. level 1: SAC + LSPPolicy on the maze in level 0's latent space (LatentActionWrapper with the
     config's wrapper settings: the latent is held `action_repeat` Ant steps): `--decisions` decisions;
  3. a single-level baseline: SAC + LSPPolicy on the maze directly (the paper's four baselines all
     cost this per step; fine-tuning and reward shaping add nothing measurable).
Level 1 runs on the level 0 just timed: its cost does not depend on how well level 0 walks.
Prints a markdown section: throughput, cost per 100k steps (or decisions) and the wall-clock of the
config's full run. RL Zoo's periodic evaluations come on top.
"""

import argparse
import shlex
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3 import SAC

from benchmarks.run import cpu_model
from sb3_lsp import LatentActionWrapper  # importing sb3_lsp registers LSPPolicy and the envs
from sb3_lsp.zoo.layerwise import load_config


def make_sac(level: dict[str, Any], env: gym.Env, seed: int) -> SAC:
    """SAC with a level's hyperparameters, as rl_zoo3.train would build it (no normalisation in these configs)."""
    kwargs = {k: v for k, v in level["hyperparams"].items() if k not in ("policy", "n_timesteps", "env_kwargs")}
    return SAC(level["hyperparams"]["policy"], env, seed=seed, device="cpu", **kwargs)


def timed_steps_per_second(model: SAC, steps: int) -> float:
    model.learn(model.learning_starts)  # random actions into the replay buffer, no update yet
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("hyperparams/hierarchy_ant_maze.yml"))
    parser.add_argument("--updates", type=int, default=2000, help="timed level-0 and baseline env steps")
    parser.add_argument("--decisions", type=int, default=1000, help="timed level-1 decisions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: one run per core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    config = load_config(args.config)  # as `python -m sb3_lsp.hierarchy train` reads it (zoo: references resolved)
    level_0, level_1 = config["levels"]
    level_0_model = make_sac(level_0, gym.make(level_0["env"], **level_0["hyperparams"].get("env_kwargs", {})), args.seed)
    level_0_rate = timed_steps_per_second(level_0_model, args.updates)

    maze_kwargs = level_1["hyperparams"].get("env_kwargs", {})
    with tempfile.TemporaryDirectory() as folder:
        level_0_model.save(Path(folder) / "level_0.zip")
        wrapped = LatentActionWrapper(
            gym.make(level_1["env"], **maze_kwargs), Path(folder) / "level_0.zip", **level_1["wrapper"]
        )
        level_1_rate = timed_steps_per_second(make_sac(level_1, wrapped, args.seed), args.decisions)
    baseline = make_sac(level_1, gym.make(level_1["env"], **maze_kwargs), args.seed)
    baseline_rate = timed_steps_per_second(baseline, args.updates)

    repeat = level_1["wrapper"].get("action_repeat", 1)
    level_0_total, level_1_total = float(level_0["hyperparams"]["n_timesteps"]), float(level_1["hyperparams"]["n_timesteps"])
    baseline_total = level_1_total * repeat  # as many maze steps as the hierarchy's level 1 takes
    rows = [
        ("level 0 (" + level_0["env"] + ")", "steps", level_0_rate, level_0_total),
        (f"level 1 ({level_1['env']}, latent held {repeat} steps)", "decisions", level_1_rate, level_1_total),
        ("single-level baseline (" + level_1["env"] + ")", "steps", baseline_rate, baseline_total),
    ]
    print(f"""## What the Ant maze costs here (measured; not run to the end)

- Command: `{shlex.join(["python", "-m", "benchmarks.ant_maze_cost", *sys.argv[1:]])}`
- Settings: `{args.config}` (the paper's: batch 128, 128x128 nets, 2 coupling layers, one update per step).
- Machine: {cpu_model()}, {th.get_num_threads()} torch thread(s), torch {th.__version__}.
- Date: {date.today()}.

| stage | unit | measured per s | wall-clock per 100k | full run (config) |
|---|---|---|---|---|""")
    for stage, unit, rate, total in rows:
        print(
            f"| {stage} | {unit} | {rate:.0f} | {1e5 / rate / 60:.1f} min | {total:.0f} {unit}: {total / rate / 3600:.1f} h |"
        )
    print(
        f"\nThe two-level pipeline: {level_0_total / level_0_rate / 3600 + level_1_total / level_1_rate / 3600:.1f} h;"
        f" each of the four single-level baselines for as many maze steps ({baseline_total:.0f}):"
        f" {baseline_total / baseline_rate / 3600:.1f} h; per goal and seed."
    )


if __name__ == "__main__":
    main()
