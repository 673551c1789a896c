"""
How fast a trained any-direction level 0 moves, and in which directions: its heading coverage.

    python -m benchmarks.heading_coverage benchmarks/results/ant_maze/level0/model.zip \
        --env sb3_lsp/AntAnyDirection-v0 --output benchmarks/results/ant_maze/level0/headings.png

Each rollout holds one latent ``h ~ N(0, I)`` for ``--steps`` steps from a reset (the level's
deterministic map ``tanh(f(h; s))``, as a level above would drive it), and records the torso's
net displacement: its heading and its speed (distance over time). Prints a markdown table (speed
quantiles, and how many of the 16 heading sectors are reached by a latent moving at least at half
the median speed) and saves a polar plot: one dot per latent at (heading, speed), and the share of latents per
sector as bars. Also the level's own stochastic policy (a fresh h every step) for comparison.
"""

import argparse
import math
from datetime import date
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np

import sb3_lsp  # noqa: F401  (registers the environments)
from sb3_lsp.hierarchy.levels import FrozenLevel

matplotlib.use("Agg")  # headless: PNG files only
import matplotlib.pyplot as plt

SECTORS = 16


def displacement(env: gym.Env, act, steps: int, seed: int) -> tuple[float, float]:
    """Heading (radians) and speed (m/s) of the torso's net displacement over one held-latent rollout."""
    obs, info = env.reset(seed=seed)
    start = np.array([info.get("x_position", 0.0), info.get("y_position", 0.0)])
    taken, done = 0, False
    while taken < steps and not done:
        obs, _, terminated, truncated, info = env.step(act(obs))
        taken, done = taken + 1, terminated or truncated
    shift = np.array([info["x_position"], info["y_position"]]) - start
    elapsed = taken * env.unwrapped.dt
    return math.atan2(shift[1], shift[0]), float(np.hypot(*shift)) / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="level 0: an SB3 .zip or an RL Zoo run folder")
    parser.add_argument("--env", default="sb3_lsp/AntAnyDirection-v0")
    parser.add_argument("--latents", type=int, default=64, help="rollouts, one held latent each")
    parser.add_argument("--steps", type=int, default=200, help="steps per rollout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, required=True, help="the polar plot (PNG)")
    args = parser.parse_args(argv)

    level = FrozenLevel.load(args.model)
    env = gym.make(args.env)
    latents = np.random.default_rng(args.seed).standard_normal((args.latents, env.action_space.shape[0]))
    held = np.array(
        [
            displacement(env, lambda obs, h=h: level.latent_to_action(obs[None], h[None])[0], args.steps, args.seed + i)
            for i, h in enumerate(latents)
        ]
    )
    sampled = np.array(
        [
            displacement(env, lambda obs: level.predict(obs[None], deterministic=False)[0], args.steps, args.seed + 10_000 + i)
            for i in range(args.latents // 4)
        ]
    )

    sector = ((held[:, 0] + math.pi) / (2 * math.pi) * SECTORS).astype(int) % SECTORS
    fast = held[:, 1] >= 0.5 * np.median(held[:, 1])
    covered = len(set(sector[fast]))
    print(f"{date.today()} · {args.model} · {args.env} · {args.latents} latents x {args.steps} steps")
    print()
    print("| rollouts | speed m/s, median [10th-90th percentile] | max | heading sectors reached (of 16) |")
    print("|---|---|---|---|")
    for name, rows, sectors in (("one latent held", held, f"{covered}"), ("the level's own sampling", sampled, "-")):
        q10, q50, q90 = np.percentile(rows[:, 1], [10, 50, 90])
        print(f"| {name} ({len(rows)}) | {q50:.2f} [{q10:.2f}-{q90:.2f}] | {rows[:, 1].max():.2f} | {sectors} |")

    figure = plt.figure(figsize=(5, 5))
    axes = figure.add_subplot(projection="polar")
    width = 2 * math.pi / SECTORS
    centres = -math.pi + width * (np.arange(SECTORS) + 0.5)
    share = np.bincount(sector, minlength=SECTORS) / len(sector)
    scale = held[:, 1].max()
    axes.bar(centres, share / share.max() * scale, width=width, alpha=0.2, color="tab:blue", label="share of latents")
    axes.scatter(held[:, 0], held[:, 1], s=12, color="tab:blue", label="one latent held (heading, speed)")
    axes.scatter(sampled[:, 0], sampled[:, 1], s=12, marker="x", color="tab:orange", label="the level's own sampling")
    axes.set_title(f"{args.env}: headings reached, speed in m/s\n{covered} of {SECTORS} sectors", fontsize=9)
    axes.legend(loc="lower left", bbox_to_anchor=(-0.15, -0.2), fontsize=7)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=120, bbox_inches="tight")
    print(f"\n![headings]({args.output})")


if __name__ == "__main__":
    main()
