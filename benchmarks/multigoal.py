"""
Multimodality, shown: SAC with LSPPolicy and with MlpPolicy on the four-goal task of Haarnoja et al.
2017 (``sb3_lsp/MultiGoal-v0``), same budget, settings and seeds; then 50 stochastic trajectories
from the start state per trained policy, the goals they reach, and each policy's action density at
the start.

    python -m benchmarks.multigoal                      (3 seeds, ~3 min per run on one core)
    python -m benchmarks.multigoal --seeds 0 1 2 3 4 --output benchmarks/results/multigoal

Writes, under --output: ``goals.csv`` (method, seed, goal, share of trajectories), ``trajectories.png``
(one panel per method and seed) and ``density.png`` (pi(a | s) at the origin, seed 0). Trained
models are SB3 zips under --runs; a model already there is reused, so a stopped run resumes.
"""

import argparse
import csv
import platform
import time
from datetime import date
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch as th
from stable_baselines3 import SAC

import sb3_lsp
from sb3_lsp.envs import MULTIGOAL_GOALS

ENV_ID = "sb3_lsp/MultiGoal-v0"
TRAJECTORIES = 50
#: Shared by both methods. ent_coef is fixed at 10 (the 2017 paper's reward scale 0.1 with the
#: temperature at 1): SB3's learned coefficient targets an entropy of -|A|, which a single-goal
#: policy meets; with it both policies, and with ent_coef 1 both flows, went to one goal (seed 0, 6000 steps).
SHARED = dict(learning_rate=3e-4, learning_starts=1000, batch_size=256, buffer_size=100_000, ent_coef=10.0)
METHODS = {
    "SAC MlpPolicy": ("MlpPolicy", {"net_arch": [128, 128]}),
    "SAC LSPPolicy": (
        "LSPPolicy",
        {
            "net_arch": [128, 128],
            "flow": "paper_text",  # its embedding, as measured before the default flow changed
            "gaussian_base": True,
            "identity_init": True,
            "fused_coupling": True,
            "coupling_net_arch": [64, 64],
            "coupling_layer_norm": True,
        },
    ),
}


def train(method: str, seed: int, steps: int, runs: Path) -> SAC:
    path = runs / method.replace(" ", "_") / f"seed_{seed}" / "model.zip"
    if path.is_file():
        return SAC.load(path)
    policy, policy_kwargs = METHODS[method]
    model = SAC(policy, ENV_ID, seed=seed, policy_kwargs=policy_kwargs, **SHARED)
    start = time.perf_counter()
    model.learn(steps, progress_bar=True)
    print(f"{method} seed {seed}: {steps} steps in {time.perf_counter() - start:.0f} s")
    model.save(path)
    return model


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
