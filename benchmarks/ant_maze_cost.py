"""What the paper's Ant maze (section 6.3) costs on this machine: measured throughput of each stage.

    python -m benchmarks.ant_maze_cost [--config hyperparams/hierarchy_ant_maze.yml] [--updates 2000] [--decisions 1000]

Reads the full-scale pipeline's config and times, with its exact settings, after `learning_starts`
random steps (not timed), one SAC update per step:
  1. level 0: SAC + LSPPolicy on its env (AntAnyDirection-v0): `--updates` env steps;
  2. level 1: SAC + LSPPolicy on the maze in level 0's latent space (LatentActionWrapper with the
     config's wrapper settings: the latent is held `action_repeat` Ant steps): `--decisions` decisions;
  3. a single-level baseline: SAC + LSPPolicy on the maze directly (the paper's four baselines all
     cost this per step; fine-tuning and reward shaping add nothing measurable).
Each stage is an ``rl_zoo3.train`` run of the level's RL Zoo entry, as ``python -m sb3_lsp.hierarchy
train`` runs it; level 1 runs on the level 0 just timed: its cost does not depend on how well level 0 walks.
Prints a markdown section: throughput, cost per 100k steps (or decisions) and the wall-clock of the
config's full run. RL Zoo's periodic evaluations come on top.
"""

import argparse
import inspect
import shlex
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.run import cpu_model
from sb3_lsp.zoo.layerwise import load_config, train_zoo_run, zoo_hyperparams


class UpdateRate(BaseCallback):
    """
    Times the steps after ``learning_starts`` (one SAC update each) and writes their rate, steps per
    second, to ``path`` when training ends. Named by the YAML entry of each timed run.

    :param path: Where the rate goes.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)
        self.start: float | None = None
        self.start_steps = 0

    def _on_step(self) -> bool:
        if self.start is None and self.num_timesteps >= self.model.learning_starts:
            self.start, self.start_steps = time.perf_counter(), self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        assert self.start is not None, "the run ended before learning_starts"
        self.path.write_text(str((self.num_timesteps - self.start_steps) / (time.perf_counter() - self.start)))


def timed_rate(env_id: str, entry: dict[str, Any], steps: int, folder: Path, seed: int, threads: int) -> tuple[float, Path]:
    """
    An ``rl_zoo3.train`` run of ``entry`` for its ``learning_starts`` random steps (not timed) plus
    ``steps`` timed ones; return their rate (steps per second) and the run folder.
    """
    learning_starts = entry.get("learning_starts", inspect.signature(SAC).parameters["learning_starts"].default)
    rate_file = folder / "rate.txt"
    entry = entry | {
        "n_timesteps": learning_starts + steps,
        "callback": [{"benchmarks.ant_maze_cost.UpdateRate": {"path": str(rate_file)}}],
    }
    zoo_args = ["--eval-freq", "-1", "--device", "cpu", "--num-threads", str(threads), "--verbose", "0"]
    run = train_zoo_run(env_id, "sac", entry, folder, seed, zoo_args, label=f"timing {env_id}")
    return float(rate_file.read_text()), run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("hyperparams/hierarchy_ant_maze.yml"))
    parser.add_argument("--updates", type=int, default=2000, help="timed level-0 and baseline env steps")
    parser.add_argument("--decisions", type=int, default=1000, help="timed level-1 decisions")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: one run per core)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = load_config(args.config)  # as `python -m sb3_lsp.hierarchy train` reads it (zoo: references resolved)
    levels = config["levels"]
    level_0, level_1 = levels
    with tempfile.TemporaryDirectory() as scratch:
        # each stage as `python -m sb3_lsp.hierarchy train` runs it: level 1 on the level 0 just timed
        def stage(name: str, env_id: str, entry: dict[str, Any], steps: int) -> tuple[float, Path]:
            return timed_rate(env_id, entry, steps, Path(scratch) / name, args.seed, args.threads)

        level_0_rate, level_0_run = stage("level_0", level_0["env"], zoo_hyperparams(levels, 0, []), args.updates)
        level_1_rate, _ = stage("level_1", level_1["env"], zoo_hyperparams(levels, 1, [level_0_run]), args.decisions)
        baseline_rate, _ = stage("baseline", level_1["env"], level_1["hyperparams"], args.updates)  # no level below

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
- Machine: {cpu_model()}, {args.threads} torch thread(s), torch {th.__version__}.
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
