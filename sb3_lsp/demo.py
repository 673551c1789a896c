"""
The README's main job: the paper's maze pipeline (section 6.3) on the Point body, end to end.

1. level 0: SAC + LSPPolicy learns to move fast in any direction (sb3_lsp/PointAnyDirection-v0);
2. level 1: SAC + LSPPolicy acts in level 0's latent space on the sparse maze (sb3_lsp/PointCrossMaze-v0);
3. flat SAC + LSPPolicy from scratch on the same sparse maze, with as many maze steps as level 1;
4. both evaluated deterministically on the raw maze: success rate and final distance to the goal,
   printed as a table and saved with a learning-curve PNG next to the RL Zoo run folders.

Budgets and hyperparameters: hyperparams/hierarchy_point_maze.yml (shipped with the package: runs from any directory).

    python -m sb3_lsp.demo [--goal 0] [--output runs/demo] [--seed 0]
"""

import argparse
import copy
import csv
import math
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib
import numpy as np
from stable_baselines3.common.monitor import load_results

import sb3_lsp
from sb3_lsp.zoo.layerwise import load_config, train, train_zoo_run

matplotlib.use("Agg")  # headless: write PNG files only
import matplotlib.pyplot as plt


def rollout(policy: Any, env: gym.Env, n_episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episodes; return per episode whether the goal was reached and the final distance to it."""
    successes, distances = [], []
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed + episode)
        state, episode_start, done = None, True, False
        while not done:
            action, state = policy.predict(obs, state=state, episode_start=np.array([episode_start]), deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            episode_start, done = False, terminated or truncated
        successes.append(bool(info["is_success"]))
        distances.append(float(info["distance_to_goal"]))
    return np.array(successes), np.array(distances)


def success_curve(run_folder: Path, window: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """
    Training success rate (rolling mean over episodes) against maze steps, from the run's Monitor CSV.
    Monitor sits under the LatentActionWrapper, so it counts raw maze steps and the task reward alone.
    """
    episodes = load_results(str(run_folder))
    steps = episodes["l"].cumsum().to_numpy()
    success = (episodes["r"] > 0).astype(float).rolling(window, min_periods=1).mean().to_numpy()
    return steps, success


def _positive(kind: type) -> Any:
    """An argparse type: a finite number of ``kind`` above 0."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config", type=Path, default=Path("hyperparams/hierarchy_point_maze.yml"), help="hierarchy + baseline YAML"
    )
    parser.add_argument("--goal", type=int, default=None, help="maze goal 0: (6, -6), 1: (6, 6), 2: (12, 0)")
    parser.add_argument("--output", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seed", type=int, default=None, help="default: the config's")
    parser.add_argument("--eval-episodes", type=_positive(int), default=20)
    parser.add_argument(
        "--scale", type=_positive(float), default=1.0, help="multiply every step budget (e.g. 0.05 for a smoke run)"
    )
    args = parser.parse_args(argv)

    try:
        config = copy.deepcopy(load_config(args.config))
    except FileNotFoundError as error:
        parser.error(str(error))
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    task = config["baseline"]
    runs = [*config["levels"], task]
    for run in runs:
        run["hyperparams"]["n_timesteps"] = max(1, int(run["hyperparams"]["n_timesteps"] * args.scale))
        run["hyperparams"]["learning_starts"] = min(
            run["hyperparams"].get("learning_starts", 100), run["hyperparams"]["n_timesteps"] // 2
        )
    for run in runs[1:]:
        if args.goal is not None:
            run["hyperparams"].setdefault("env_kwargs", {})["goal"] = args.goal
    # Every environment once before any training: a bad goal fails now, not after level 0 trained.
    for run in runs:
        try:
            gym.make(run["env"], **run["hyperparams"].get("env_kwargs", {})).close()
        except (ValueError, TypeError) as error:
            parser.error(f"{run['env']} with {run['hyperparams'].get('env_kwargs', {})}: {error}")
    zoo_args = ["-P", "--eval-freq", "-1"]  # progress bars; the evaluation below replaces the periodic one

    print("== Hierarchy: level 0 on the shaping reward, then level 1 on the task in its latent space")
    hierarchy_path, level_runs = train(config, args.output / "hierarchy", seed, zoo_args)
    print("== Flat baseline: the same task from scratch")
    flat_run = train_zoo_run(
        task["env"], task.get("algo", "sac"), task["hyperparams"], args.output / "flat", seed + 100, zoo_args, "flat"
    )

    env_kwargs = task["hyperparams"].get("env_kwargs", {})
    maze = gym.make(task["env"], **env_kwargs)
    flat_model = sb3_lsp.HierarchicalPolicy.from_levels([flat_run])  # a one-level "hierarchy": the flat policy
    results = {
        "hierarchy (2 levels)": rollout(sb3_lsp.HierarchicalPolicy.load(hierarchy_path), maze, args.eval_episodes, 10_000),
        "flat SAC + LSPPolicy": rollout(flat_model, maze, args.eval_episodes, 10_000),
    }
    level0_steps = config["levels"][0]["hyperparams"]["n_timesteps"]
    maze_steps = {  # finished training episodes' steps, from the Monitor CSVs
        "hierarchy (2 levels)": int(load_results(str(level_runs[-1]))["l"].sum()),
        "flat SAC + LSPPolicy": int(load_results(str(flat_run))["l"].sum()),
    }

    rows = [
        {
            "method": name,
            "maze steps (training)": maze_steps[name],
            "pretraining steps": level0_steps if name.startswith("hierarchy") else 0,
            "success rate": f"{successes.mean():.2f}",
            "final distance (m)": f"{distances.mean():.2f} ± {distances.std():.2f}",
        }
        for name, (successes, distances) in results.items()
    ]
    header = (
        f"{task['env']} goal {env_kwargs.get('goal', 0)}, seed {seed}, {args.eval_episodes} deterministic episodes, "
        f"{date.today()}"
    )
    table = [f"| {' | '.join(rows[0])} |", "|" + "---|" * len(rows[0])]
    table += [f"| {' | '.join(str(v) for v in row.values())} |" for row in rows]
    print(f"\n{header}\n" + "\n".join(table))
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.md").write_text(f"{header}\n\n" + "\n".join(table) + "\n")
    with (args.output / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, run_folder in (("hierarchy (level 1)", level_runs[-1]), ("flat SAC", flat_run)):
        steps, success = success_curve(run_folder)
        axis.plot(steps, success, label=name)
    axis.set(xlabel="maze environment steps", ylabel="training success rate (last 10 episodes)", ylim=(-0.05, 1.05))
    axis.set_title(f"{task['env']} goal {env_kwargs.get('goal', 0)}: sparse reward")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.output / "learning_curves.png", dpi=120)
    print(f"\nSaved {args.output / 'results.md'}, {args.output / 'results.csv'}, {args.output / 'learning_curves.png'}")
    print(f"Run folders: {', '.join(map(str, [*level_runs, flat_run]))}; composed policy: {hierarchy_path}")


if __name__ == "__main__":
    main()
