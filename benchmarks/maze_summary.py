"""
Best against final success of every maze method, from a benchmark record's aggregate.csv.

    python -m benchmarks.maze_summary benchmarks/results/point_maze/aggregate.csv

Prints a markdown table per (env, method): the seeds whose evaluations ever reached the goal, the
median step of the first successful evaluation, the mean over seeds of the best and of the final
success rate and final distance, and (per env) the ratio of the best baseline's mean final
distance to the first method's (the hierarchy's in the maze configs), beside the paper's "> 4x".
"""

import argparse
from pathlib import Path

import pandas as pd


def summary(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per (env, method), in the order of the CSV."""
    rows = []
    for (env, method), runs in evaluations.groupby(["env", "method"], sort=False):
        per_seed = runs.sort_values("step").groupby("seed")
        first = per_seed.apply(lambda run: run.loc[run["success_rate"] > 0, "step"].min(), include_groups=False)
        final = per_seed.tail(1)
        rows.append(
            {
                "env": env,
                "method": method,
                "seeds": per_seed.ngroups,
                "seeds that reached it": int(first.notna().sum()),
                "first success (median step)": "-" if first.isna().all() else f"{first.median():.0f}",
                "best success": per_seed["success_rate"].max().mean(),
                "final success": final["success_rate"].mean(),
                "final distance (m)": final["final_distance"].mean(),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("aggregate", type=Path, help="a benchmark record's aggregate.csv")
    table = summary(pd.read_csv(parser.parse_args(argv).aggregate))
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(f"{value:.2f}" if isinstance(value, float) else str(value) for value in row) + " |")
    print()
    for env, rows in table.groupby("env", sort=False):
        first, baselines = rows.iloc[0], rows.iloc[1:]
        best = baselines.loc[baselines["final distance (m)"].idxmin()]
        ratio = best["final distance (m)"] / first["final distance (m)"]
        print(
            f"- {env}: best baseline by final distance: {best['method']} ({best['final distance (m)']:.2f} m); "
            f"{first['method']}: {first['final distance (m)']:.2f} m; ratio {ratio:.2f}x (paper, Ant maze: > 4x)."
        )


if __name__ == "__main__":
    main()
