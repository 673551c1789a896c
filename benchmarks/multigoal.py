"""
Multimodality, shown: SAC with LSPPolicy and with MlpPolicy on the four-goal task of Haarnoja et al.
2017 (``sb3_lsp/MultiGoal-v0``), same budget, settings and seeds; then 50 stochastic trajectories
from the start state per trained policy, the goals they reach, and each policy's action density at
the start.

    python -m benchmarks.multigoal                      (3 seeds, ~3 min per run on one core)
    python -m benchmarks.multigoal --seeds 0 1 2 3 4 --output benchmarks/results/multigoal

Writes, under --output: ``goals.csv`` (method, seed, goal, share of trajectories), ``trajectories.png``
(one panel per method and seed) and ``density.png`` (pi(a | s) at the origin, seed 0). Each model
is an ``rl_zoo3.train`` run of the ``sb3_lsp/MultiGoal-v0`` entry of ``hyperparams/sac_lsp.yml``
(``--runs/<method>/seed_<s>/``, an RL Zoo log folder); a model already there is reused, so a stopped
run resumes.
"""

import argparse
import csv
import platform
from datetime import date
from pathlib import Path
from typing import Any

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch as th
from stable_baselines3 import SAC

import sb3_lsp
from sb3_lsp.envs import MULTIGOAL_GOALS
from sb3_lsp.hierarchy.levels import find_zoo_run_files
from sb3_lsp.settings import with_zoo_entry
from sb3_lsp.zoo.layerwise import latest_run_folder, train_zoo_run

ENV_ID = "sb3_lsp/MultiGoal-v0"
TRAJECTORIES = 50
#: Each method: the ``sb3_lsp/MultiGoal-v0`` entry of ``hyperparams/sac_lsp.yml`` (every setting, and
#: the flow), the Gaussian actor replacing the flow for MlpPolicy.
METHODS: dict[str, dict[str, Any]] = {
    "SAC MlpPolicy": {"policy": "MlpPolicy", "policy_kwargs": {"net_arch": [128, 128]}},
    "SAC LSPPolicy": {},
}


def train(method: str, seed: int, steps: int, runs: Path) -> SAC:
    """The method's model for ``seed``: an ``rl_zoo3.train`` run under ``runs/<method>/seed_<seed>/``, reused if there."""
    log_folder = runs / method.replace(" ", "_") / f"seed_{seed}"
    try:
        return SAC.load(find_zoo_run_files(latest_run_folder(log_folder, "sac", ENV_ID))[0])
    except FileNotFoundError:  # not trained yet
        pass
    entry = with_zoo_entry({"zoo": {"file": "sac_lsp.yml", "env": ENV_ID}}, "benchmarks.multigoal")
    entry |= {"n_timesteps": steps, **METHODS[method]}
    zoo_args = ["--eval-freq", "-1", "--device", "cpu", "--num-threads", "1", "--verbose", "0", "--progress"]
    run = train_zoo_run(ENV_ID, "sac", entry, log_folder, seed, zoo_args, f"{method} seed {seed}")
    return SAC.load(find_zoo_run_files(run)[0])


def rollouts(model: SAC, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` stochastic trajectories from the start state: their positions and the goal each reached (-1: none)."""
    env = gym.make(ENV_ID)
    paths, goals = [], []
    for i in range(n):
        obs, info = env.reset(seed=10_000 + i)
        path, done = [obs], False
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            obs, _, terminated, truncated, info = env.step(action)
            path.append(obs)
            done = terminated or truncated
        paths.append(np.array(path))
        goals.append(info["goal"])
    return paths, np.array(goals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000, help="training steps per run")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/multigoal"))
    parser.add_argument("--runs", type=Path, default=Path("runs/multigoal"), help="where the trained models go")
    args = parser.parse_args()
    th.set_num_threads(1)
    args.output.mkdir(parents=True, exist_ok=True)

    rows = []
    fig, axes = plt.subplots(len(METHODS), len(args.seeds), figsize=(3.2 * len(args.seeds), 3.4 * len(METHODS)), squeeze=False)
    density_fig, density_axes = plt.subplots(1, len(METHODS), figsize=(4.6 * len(METHODS), 4), squeeze=False)
    for row, method in enumerate(METHODS):
        for col, seed in enumerate(args.seeds):
            model = train(method, seed, args.steps, args.runs)
            paths, goals = rollouts(model, TRAJECTORIES)
            shares = [(goals == g).mean() for g in range(len(MULTIGOAL_GOALS))] + [(goals == -1).mean()]
            labels = [0, 1, 2, 3, "none"]
            rows += [dict(method=method, seed=seed, goal=g, share=share) for g, share in zip(labels, shares, strict=True)]
            distinct = len(set(goals.tolist()) - {-1})
            ax = axes[row, col]
            for path in paths:
                ax.plot(path[:, 0], path[:, 1], lw=0.7, alpha=0.6)
            ax.scatter(*MULTIGOAL_GOALS.T, s=250, facecolors="none", edgecolors="k")
            ax.set(xlim=(-7, 7), ylim=(-7, 7), aspect="equal", xticks=[], yticks=[])
            ax.set_title(
                f"{method}, seed {seed}\n{distinct} goals; E/W/N/S {'/'.join(f'{s:.0%}' for s in shares[:4])}", fontsize=8
            )
            print(f"{method} seed {seed}: {distinct} distinct goals, shares E/W/N/S/none {np.round(shares, 2).tolist()}")
            if col == 0:
                sb3_lsp.plot_action_density(model, np.zeros(2, np.float32), ax=density_axes[0, row])
                density_axes[0, row].set_title(f"{method}, seed {seed}: pi(a | s = origin)", fontsize=9)
    machine = platform.processor() or platform.machine()
    stamp = f"{date.today()}, {machine}, {args.steps} steps per run, {TRAJECTORIES} trajectories"
    fig.suptitle(f"sb3_lsp/MultiGoal-v0: stochastic trajectories from the start\n{stamp}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.output / "trajectories.png", dpi=110)
    density_fig.tight_layout()
    density_fig.savefig(args.output / "density.png", dpi=110)
    with open(args.output / "goals.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["method", "seed", "goal", "share"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
