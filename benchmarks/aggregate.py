"""
Aggregate a benchmark output folder (written by ``python -m benchmarks.run``) into results.

    python -m benchmarks.aggregate runs/benchmarks/pendulum_small [--results benchmarks/RESULTS.md]

Writes, next to the results file, ``results/<name>/aggregate.csv`` (every evaluation of every
run, one row each), ``results/<name>/runs.csv`` (one row per run: its spec's digest, timing,
machine, date), ``results/<name>/commands.txt``, one learning-curve PNG per environment (mean over seeds with a +-1 std band;
maze environments also get success rate and final distance panels), and replaces the config's
own section of the results file (between its begin/end markers; every other section is kept)
with a markdown table: the final evaluation's mean +- std over seeds, and the interquartile mean
with a 95 % stratified-bootstrap interval (rliable) where a cell has at least 5 seeds. The
section records the command, the machine (from the runs' ``run.json``) and the dates.

Results accumulate: the files under ``results/<name>/`` are the durable record (output folders
are scratch and may be lost, or come from another machine), so runs recorded there whose spec is
unchanged are kept next to the runs finished in the output folder; a run finished in the output
folder replaces its recorded copy, and a recorded run whose spec no longer matches the config is
dropped (and listed as not run). Delete ``results/<name>/`` to start a benchmark's record afresh.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from benchmarks.grid import (
    commands_in,
    env_name,
    grid_specs,
    levels_named,
    load_config,
    pretrained_specs,
    run_status,
    slug,
    spec_digest,
    trained_levels,
)

matplotlib.use("Agg")  # headless: PNG files only
import matplotlib.pyplot as plt

MIN_SEEDS_FOR_IQM = 5
#: The columns that name a run in ``runs.csv``.
KEY = ["kind", "name", "env", "seed"]
BOOTSTRAP_REPS = 10_000
#: Evaluation columns plotted (when a run reports them) and their axis labels.
CURVE_METRICS = {
    "mean_return": "deterministic return",
    "success_rate": "success rate",
    "final_distance": "final distance to goal (m)",
}


def read_record(path: Path) -> pd.DataFrame:
    """A record's CSV (``aggregate.csv``, ``runs.csv``) exactly as written: pandas' default float
    parser can change the last digit, which rewriting the record would then commit."""
    return pd.read_csv(path, dtype={"spec_digest": str}, float_precision="round_trip")


def pretraining_steps(config: dict[str, Any], run: dict[str, Any]) -> int:
    """Environment steps spent on the pretrained levels a run builds on (recursively)."""
    pretrained = config.get("pretrained", {})
    return sum(int(pretrained[name]["budget"]) + pretraining_steps(config, pretrained[name]) for name in levels_named(run))


def expected_runs(config: dict[str, Any]) -> dict[tuple[str, str, str, int], tuple[Path, dict[str, Any]]]:
    """Every run of the config, pretrained levels and grid, by (kind, name, env, seed) -> (folder, spec)."""
    runs = {}
    for (name, level), phase in zip(trained_levels(config).items(), pretrained_specs(config), strict=True):
        for folder, spec in phase:
            runs["pretrained", name, level["env"], spec["seed"]] = (folder, spec)
    for folder, spec in grid_specs(config):
        runs["grid", spec["method"], spec["env"], spec["seed"]] = (folder, spec)
    return runs


def read_evaluations(folder: Path) -> pd.DataFrame:
    """
    One row per evaluation of the run in ``folder``: step, mean and std of the returns, success
    rate and final distance to the goal (empty where the environment reports none), episodes and
    wall-clock seconds, from its ``evaluations.npz`` (:class:`sb3_lsp.InfoEvalCallback`).
    """
    if not (folder / "evaluations.npz").is_file():  # run folders written before 2026-12-06 kept a CSV of these rows
        return pd.read_csv(folder / "evaluations.csv")
    with np.load(folder / "evaluations.npz") as evaluations:
        returns = evaluations["results"]

        def mean_of(key: str) -> np.ndarray:
            return evaluations[key].mean(axis=1) if key in evaluations else np.full(len(returns), np.nan)

        return pd.DataFrame(
            {
                "step": evaluations["timesteps"],
                "mean_return": returns.mean(axis=1),
                "std_return": returns.std(axis=1),
                "success_rate": mean_of("successes"),
                "final_distance": mean_of("distance_to_goal"),
                "episodes": returns.shape[1],
                "time_s": evaluations["wall_time_s"],
            }
        )


def collect(output: Path, config: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every evaluation row of every finished grid run (with method, env, seed), and one record per finished run."""
    frames, records = [], []
    methods = {method["name"]: method for method in config["methods"]}
    for (kind, name, env, seed), (folder, spec) in expected_runs(config).items():
        if run_status(output / folder, spec) != "done":
            continue
        run = json.loads((output / folder / "run.json").read_text())
        records.append(
            {"kind": kind, "name": name, "env": env, "seed": seed, "spec_digest": spec_digest(spec)}
            | {key: value for key, value in run.items() if key not in ("label", "versions")}
            | run["versions"]
        )
        if kind == "grid":
            frame = read_evaluations(output / folder)
            frame.insert(0, "seed", seed)
            frame.insert(0, "env", env)
            frame.insert(0, "method", name)
            frame["pretraining_steps"] = pretraining_steps(config, methods[name])
            frame["steps_per_s"] = run["steps_per_s"]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(), pd.DataFrame(records)


def unchanged_records(
    recorded: pd.DataFrame, runs: dict[tuple[str, str, str, int], tuple[Path, dict[str, Any]]]
) -> list[tuple[tuple[str, str, str, int], bool]]:
    """For each row of a ``runs.csv``: its key, and whether it is a run of ``runs`` with the same spec digest."""
    keys = [(kind, name, env, int(seed)) for kind, name, env, seed in recorded[KEY].itertuples(index=False, name=None)]
    return [
        (key, key in runs and spec_digest(runs[key][1]) == digest)
        for key, digest in zip(keys, recorded["spec_digest"], strict=True)
    ]


def recorded_folders(record_folder: Path, config: dict[str, Any]) -> set[Path]:
    """
    The runs of ``config`` recorded in ``record_folder`` (``results/<name>/``) with an unchanged spec.

    :return: their folders, relative to an output folder (as ``grid_specs`` and ``pretrained_specs`` name them)
    """
    if not (record_folder / "runs.csv").is_file():
        return set()
    runs = expected_runs(config)
    recorded = read_record(record_folder / "runs.csv")
    return {runs[key][0] for key, unchanged in unchanged_records(recorded, runs) if unchanged}


def with_recorded(
    evaluations: pd.DataFrame, records: pd.DataFrame, record_folder: Path, config: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    Add the runs recorded in ``record_folder`` whose spec is unchanged and that the output folder did not finish again.

    :return: evaluations and run records, in grid order (then by step)
    """
    runs = expected_runs(config)
    if (record_folder / "runs.csv").is_file():
        recorded = read_record(record_folder / "runs.csv")
        fresh = set(records[KEY].itertuples(index=False, name=None)) if len(records) else set()
        keep = [key not in fresh and unchanged for key, unchanged in unchanged_records(recorded, runs)]
        kept = recorded[keep]
        grid_kept = {key[1:] for key in kept[KEY].itertuples(index=False, name=None) if key[0] == "grid"}
        old = read_record(record_folder / "aggregate.csv")
        old = old[[key in grid_kept for key in old[["method", "env", "seed"]].itertuples(index=False, name=None)]]
        evaluations = pd.concat([frame for frame in (evaluations, old) if len(frame)] or [pd.DataFrame()], ignore_index=True)
        records = pd.concat([frame for frame in (records, kept) if len(frame)] or [pd.DataFrame()], ignore_index=True)
    elif (record_folder / "aggregate.csv").is_file():
        # A record from before runs.csv existed: its runs cannot be checked against the config, and
        # writing this aggregate over it would drop every run the output folder did not finish again.
        old = read_record(record_folder / "aggregate.csv")
        fresh = set(evaluations[["method", "env", "seed"]].itertuples(index=False, name=None)) if len(evaluations) else set()
        lost = set(old[["method", "env", "seed"]].itertuples(index=False, name=None)) - fresh
        if lost:
            raise FileExistsError(
                f"{record_folder / 'aggregate.csv'} holds {len(lost)} run(s) that this output folder lacks "
                f"(e.g. {sorted(lost)[0]}), and no runs.csv to check them against the config, so aggregating "
                "would overwrite them. Run the whole grid in this output folder, or move that folder aside "
                "(or pass another --results) to start a new record."
            )
    if evaluations.empty:
        return evaluations, records
    rank = {key: index for index, key in enumerate(runs)}
    evaluations["rank"] = [
        rank[("grid", *key)] for key in evaluations[["method", "env", "seed"]].itertuples(index=False, name=None)
    ]
    records["rank"] = [rank[key] for key in records[KEY].itertuples(index=False, name=None)]
    evaluations = evaluations.sort_values(["rank", "step"], ignore_index=True).drop(columns="rank")
    return evaluations, records.sort_values("rank", ignore_index=True).drop(columns="rank")


def missing_runs(evaluations: pd.DataFrame, config: dict[str, Any]) -> dict[tuple[str, str], list[int]]:
    """The seeds without results yet of every (method, env) cell of the grid that has some."""
    have = set(evaluations[["method", "env", "seed"]].itertuples(index=False, name=None))
    missing: dict[tuple[str, str], list[int]] = {}
    for _, spec in grid_specs(config):
        if (spec["method"], spec["env"], spec["seed"]) not in have:
            missing.setdefault((spec["method"], spec["env"]), []).append(spec["seed"])
    return missing


def iqm_with_interval(scores: np.ndarray) -> str:
    """IQM over seeds with its 95 % bootstrap interval (rliable), formatted; scores has one entry per seed."""
    # Imported here: only tables with >= 5 seeds need rliable (the `bench` extra).
    from rliable import library as rly
    from rliable import metrics

    # rliable's StratifiedBootstrap draws its resamples with numpy's global generator and ignores
    # random_state, so the interval depended on whatever ran before: seed that generator for the call.
    outside = np.random.get_state()
    np.random.seed(0)
    try:
        point, interval = rly.get_interval_estimates(
            {"run": scores.reshape(-1, 1)}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=BOOTSTRAP_REPS
        )
    finally:
        np.random.set_state(outside)
    return f"{point['run'][0]:.1f} [{interval['run'][0, 0]:.1f}, {interval['run'][1, 0]:.1f}]"


def mean_std(values: pd.Series, digits: int) -> str:
    std = "n/a" if len(values) < 2 else f"{values.std():.{digits}f}"  # sample std over seeds (ddof=1)
    return f"{values.mean():.{digits}f} ± {std}"


def markdown_table(evaluations: pd.DataFrame, config: dict[str, Any]) -> str:
    """One row per (env, method): the final evaluation of each seed, summarised over seeds."""
    final = evaluations.loc[evaluations.groupby(["method", "env", "seed"])["step"].idxmax()]
    has_maze = bool(final["success_rate"].notna().any())
    show_iqm = bool((final.groupby(["method", "env"])["seed"].nunique() >= MIN_SEEDS_FOR_IQM).any())
    header = ["env", "method", "seeds", "steps (+ pretraining)", "final return, mean ± std"]
    if show_iqm:
        header.append("IQM [95% CI]")
    if has_maze:
        header += ["success rate", "final distance (m)"]
    header.append("wall-clock steps/s per run (median)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    env_names = [env_name(env) for env in config["envs"]]
    for env in env_names:
        for method in (method["name"] for method in config["methods"]):
            cell = final[(final["env"] == env) & (final["method"] == method)]
            if cell.empty:
                continue
            returns = cell["mean_return"]
            row = [env, method, str(len(cell)), f"{int(cell['step'].max())} (+ {int(cell['pretraining_steps'].iloc[0])})"]
            row.append(mean_std(returns, 1))
            if show_iqm:
                row.append(iqm_with_interval(returns.to_numpy()) if len(cell) >= MIN_SEEDS_FOR_IQM else "n/a (< 5 seeds)")
            if has_maze:
                row += [mean_std(cell["success_rate"], 2), mean_std(cell["final_distance"], 2)]
            row.append(f"{cell['steps_per_s'].median():.0f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def learning_curves(
    evaluations: pd.DataFrame, env: str, metric: str, methods: list[str], count_pretraining: bool
) -> dict[str, pd.DataFrame]:
    """
    Each method's curve of ``metric`` on ``env``: mean, std and number of seeds per step.

    :param count_pretraining: index a run's evaluations by its own steps plus the steps of the
        pretrained levels it builds on, so that methods of equal total budget end at the same x
    :return: method -> frame indexed by step, columns ``mean``, ``std``, ``count`` (methods without runs left out)
    """
    data = evaluations[evaluations["env"] == env]
    curves = {}
    for method in methods:
        runs = data[data["method"] == method]
        steps = runs["step"] + runs["pretraining_steps"] if count_pretraining else runs["step"]
        curve = runs[metric].groupby(steps.rename("step")).agg(["mean", "std", "count"])
        if not curve.empty:
            curves[method] = curve
    return curves


def plot_curves(evaluations: pd.DataFrame, env: str, methods: list[str], path: Path, count_pretraining: bool) -> None:
    """Learning curves of one environment: mean over seeds, +-1 std band, one panel per reported metric."""
    data = evaluations[evaluations["env"] == env]
    panels = [metric for metric in CURVE_METRICS if data[metric].notna().any()]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    xlabel = "environment steps, pretrained levels' included" if count_pretraining else "environment steps"
    for axis, metric in zip(axes[0], panels, strict=True):
        for method, curve in learning_curves(evaluations, env, metric, methods, count_pretraining).items():
            line = axis.plot(curve.index, curve["mean"], label=f"{method} ({curve['count'].max()} seeds)")[0]
            axis.fill_between(
                curve.index, curve["mean"] - curve["std"].fillna(0), curve["mean"] + curve["std"].fillna(0), alpha=0.2,
                color=line.get_color(),
            )  # fmt: skip
        axis.set(xlabel=xlabel, ylabel=CURVE_METRICS[metric], title=env)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine_summary(records: pd.DataFrame) -> list[str]:
    """Where and when the runs ran: CPU, cores, workers, torch threads; dates and total compute."""
    cpus = sorted({f"{cpu} ({count} logical cores)" for cpu, count in zip(records["cpu"], records["cpu_count"], strict=True)})
    workers = sorted(set(records["workers"]))
    threads = sorted(set(records["torch_threads"]))
    dates = sorted(str(finished)[:10] for finished in records["finished"])
    period = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    cpu_hours = records["wall_s"].sum() / 3600
    return [
        f"Machine: {', '.join(cpus)}; {'/'.join(map(str, workers))} parallel worker(s), "
        f"{'/'.join(map(str, threads))} torch thread(s) per run; torch {', '.join(sorted(set(records['torch'])))}.",
        f"Date: {period}. Compute: {len(records)} runs, {cpu_hours:.2f} core-hours of wall-clock time (one core per run).",
    ]


def replace_section(results: Path, name: str, section: str) -> None:
    """Put ``section`` between this config's markers in ``results``, keeping everything else."""
    begin, end = f"<!-- benchmarks.run {name}: begin -->", f"<!-- benchmarks.run {name}: end -->"
    text = results.read_text() if results.is_file() else "# Benchmark results\n"
    block = f"{begin}\n{section.strip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)


def write_results(output: Path, results: Path) -> None:
    """Aggregate CSV, PNGs and the markdown section for the benchmark in ``output``."""
    config = load_config(output / "config.yml")
    figures = results.parent / "results" / slug(config["name"])
    evaluations, records = with_recorded(*collect(output, config), figures, config)
    if evaluations.empty:
        raise FileNotFoundError(f"No finished runs under {output / 'runs'} and none recorded in {figures}.")
    # An output folder whose runs all came from the record (none trained here) has no command.txt.
    commands_here = commands_in(output / "command.txt")
    commands = list(dict.fromkeys(line for line in [*commands_in(figures / "commands.txt"), *commands_here] if line.strip()))
    figures.mkdir(parents=True, exist_ok=True)
    evaluations.to_csv(figures / "aggregate.csv", index=False)
    records.to_csv(figures / "runs.csv", index=False)
    (figures / "commands.txt").write_text("\n".join(commands) + "\n")

    methods = [method["name"] for method in config["methods"]]
    images = []
    for env in map(env_name, config["envs"]):
        if (evaluations["env"] == env).any():
            plot_curves(evaluations, env, methods, figures / f"{slug(env)}.png", config.get("curves_count_pretraining", False))
            images.append(f"![{env}]({(figures / f'{slug(env)}.png').relative_to(results.parent)})")

    missing = missing_runs(evaluations, config)
    not_run = (
        f"- **Not run yet** ({sum(map(len, missing.values()))} of {len(grid_specs(config))} runs; "
        "rerun with `--envs`/`--seeds`/`--methods` to add them): "
        + "; ".join(f"{method} on {env}, seeds {seeds}" for (method, env), seeds in missing.items())
        + ".\n"
        if missing
        else ""
    )
    csv_link = (figures / "aggregate.csv").relative_to(results.parent)
    section = f"""
## {config.get("title", config["name"])}

{config.get("description", "").strip()}

- Command(s): {", ".join(f"`{command}`" for command in commands)}
- Budget: {config["budget"]} steps per run (unless a method sets its own), seeds {config["seeds"]},
  {config["eval"]["episodes"]} deterministic evaluation episodes every {config["eval"]["every"]} steps.
{chr(10).join(f"- {line}" for line in machine_summary(records))}
- Every evaluation of every run: [{csv_link}]({csv_link}); one record per run (timing, machine): `runs.csv` beside it.
{not_run}
Final evaluation of each seed, summarised over seeds (std: sample std over seeds). Steps/s
include the periodic evaluations and whatever else ran on the machine at the time.

{markdown_table(evaluations, config)}

{chr(10).join(images)}
"""
    replace_section(results, config["name"], section)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.aggregate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", type=Path, help="the benchmark's output folder (holds config.yml and runs/)")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/RESULTS.md"), help="markdown file to update")
    args = parser.parse_args(argv)
    try:
        write_results(args.output, args.results)
    except (FileNotFoundError, FileExistsError) as error:
        raise SystemExit(f"Nothing written: {error}") from None
    print(f"updated {args.results}")


if __name__ == "__main__":
    main()
