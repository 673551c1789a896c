"""
Curves of the ``diagnostics.csv`` files that ``benchmarks.run`` writes for configs with a
``diagnostics:`` key (:class:`sb3_lsp.SACDiagnostics`): one PNG per method and environment, one
thin line per seed and their mean in bold.

    python -m benchmarks.diagnostics_plot runs/benchmarks/point_maze_diagnostics [--output DIR]

Panels: success acting with h = 0 and with sampled actions; the entropy coefficient and the
policy's entropy; Q(s0, a0) against the discounted return the episode then got; the share of
collected transitions that reached the goal; the mean |latent| and the latents' std.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

PANELS = (
    ("success (10 episodes)", ("success_deterministic", "success_stochastic")),
    ("entropy coefficient, entropy", ("ent_coef", "entropy")),
    ("Q(s0, a0) vs discounted return", ("q_start", "return_start")),
    ("share of transitions at the goal", ("success_share_replay",)),
    ("latents chosen", ("latent_abs_mean", "latent_std")),
)


def plot(folder: Path, output: Path) -> list[Path]:
    """One PNG per ``runs/<method>/<env>`` under ``folder``; returns their paths."""
    written = []
    for env_folder in sorted(folder.glob("runs/*/*")):
        frames = {seed.name: pd.read_csv(seed / "diagnostics.csv") for seed in sorted(env_folder.glob("seed_*"))}
        frames = {seed: frame for seed, frame in frames.items() if len(frame)}
        if not frames:
            continue
        fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
        for ax, (title, columns) in zip(axes, PANELS, strict=True):
            for color, column in zip(("C0", "C1"), columns, strict=False):
                for frame in frames.values():
                    ax.plot(frame["step"], frame[column], color=color, lw=0.6, alpha=0.4)
                mean = pd.concat([frame.set_index("step")[column] for frame in frames.values()], axis=1).mean(axis=1)
                ax.plot(mean.index, mean.values, color=color, lw=2, label=column)
            ax.set(title=title, xlabel="decisions")
            ax.legend(fontsize=7)
        method, env = env_folder.parent.name, env_folder.name
        fig.suptitle(f"{method}, {env}: {len(frames)} seeds (thin: each seed, bold: mean)", fontsize=10)
        fig.tight_layout()
        path = output / f"diagnostics_{method}_{env}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a benchmarks.run output folder")
    parser.add_argument("--output", type=Path, help="where the PNGs go (default: benchmarks/results/<folder name>)")
    args = parser.parse_args()
    output = args.output or Path("benchmarks/results") / args.folder.name
    output.mkdir(parents=True, exist_ok=True)
    for path in plot(args.folder, output):
        print(path)


if __name__ == "__main__":
    main()
