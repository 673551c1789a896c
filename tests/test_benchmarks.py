"""The benchmark harness (benchmarks/run.py, benchmarks/aggregate.py) on tiny grids, as a user runs it."""

import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from benchmarks.aggregate import (
    expected_runs,
    iqm_with_interval,
    learning_curves,
    read_evaluations,
    read_record,
    unchanged_records,
    write_results,
)
from benchmarks.grid import grid_specs, load_config, make_spec, pretrained_specs, slug
from benchmarks.run import _train_into
from benchmarks.speed import GRADIENT_STEP, LOG_PROB_FORWARD, LOG_PROB_FORWARD_BACKWARD

REPO = Path(__file__).resolve().parents[1]
TINY_SHARED = {"learning_starts": 100, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}
MLP_AND_LSP = [
    {"name": "SAC MlpPolicy", "algo": "sac", "policy": "MlpPolicy"},
    {"name": "SAC LSPPolicy", "algo": "sac", "policy": "LSPPolicy"},
]


def run_harness(config: dict, tmp_path: Path, *extra: str, check: bool = True) -> tuple[str, Path, Path]:
    """Write ``config``, run ``python -m benchmarks.run`` on it (expecting success or failure).

    :return: its stdout + stderr, the output folder and the results file
    """
    config_path, output, results = tmp_path / "config.yml", tmp_path / "out", tmp_path / "RESULTS.md"
    config_path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "benchmarks.run", str(config_path), "--workers", "2"]
    command += ["--output", str(output), "--results", str(results), *extra]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (completed.returncode == 0) == check, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr, output, results


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_grid_outputs_and_resume(tmp_path: Path) -> None:
    config = {
        "name": "tiny",
        "title": "Tiny Pendulum grid",
        "seeds": [0, 1],
        "budget": 600,
        "eval": {"every": 300, "episodes": 2},
        "shared": TINY_SHARED,
        "envs": [{"id": "Pendulum-v1"}],
        "methods": MLP_AND_LSP,
    }
    # A part of the grid first (--seeds), as a session too short for the whole grid runs it; the
    # results list what is missing. Then the whole grid: the finished part is skipped.
    log, _, _ = run_harness(config, tmp_path, "--envs", "CartPole-v1", check=False)
    assert "--envs 'CartPole-v1' is not in the config; its envs are: Pendulum-v1" in log
    log, _, _ = run_harness(config, tmp_path, "--methods", "SAC", check=False)
    assert "--methods 'SAC' is not in the config; its methods are: SAC MlpPolicy, SAC LSPPolicy" in log
    log, _, _ = run_harness(config, tmp_path, "--methods", "SAC MlpPolicy", "--list")
    assert log.count("pending: SAC MlpPolicy") == 2 and "LSPPolicy" not in log
    log, output, results = run_harness(config, tmp_path, "--seeds", "1")
    assert log.count("done: ") == 2 and "seed 0" not in log
    assert "**Not run yet** (2 of 4 runs" in results.read_text()
    assert "SAC MlpPolicy on Pendulum-v1, seeds [0]; SAC LSPPolicy on Pendulum-v1, seeds [0]." in results.read_text()
    log, output, results = run_harness(config, tmp_path)
    assert log.count("skip (done)") == 2 and log.count("done: ") == 2
    # every evaluation's progress line reaches the console (Ray would fold those that differ in numbers)
    assert log.count(": step 300, return") == 2 and log.count(": step 600, return") == 2 and "[repeated" not in log
    # rl_zoo3's own messages go to each run's train.log, not to the grid's console
    assert "Log path:" not in log and "Default hyperparameters" not in log

    runs = sorted(output.glob("runs/*/Pendulum-v1/seed_*"))
    assert len(runs) == 4
    for run in runs:
        # an RL Zoo run folder (the model as <env>.zip, rl_zoo3's config.yml and args.yml) plus the harness's files
        assert {"evaluations.npz", "Pendulum-v1.zip", "spec.yml", "run.json", "done"} <= {p.name for p in run.iterdir()}
        assert "Log path:" in (run / "train.log").read_text()
        zoo_config = dict(yaml.unsafe_load((run / "Pendulum-v1" / "config.yml").read_text()))
        assert zoo_config["n_timesteps"] == 600 and zoo_config["batch_size"] == 32
        assert yaml.unsafe_load((run / "Pendulum-v1" / "args.yml").read_text())["seed"] == int(run.name[-1])
        # SB3's TensorBoard logs: training (the entropy coefficient) and the evaluations, at their steps
        (events,) = run.glob("tensorboard/**/events.out.tfevents.*")
        accumulator = EventAccumulator(str(events)).Reload()
        assert {"train/ent_coef", "train/actor_loss", "eval/mean_reward"} <= set(accumulator.Tags()["scalars"])
        assert [event.step for event in accumulator.Scalars("eval/mean_reward")] == [300, 600]
        evaluations = read_evaluations(run)
        assert evaluations["step"].tolist() == [300, 600]
        assert (evaluations["episodes"] == 2).all() and evaluations["mean_return"].lt(0).all()

    figures = tmp_path / "results" / "tiny"
    aggregate = pd.read_csv(figures / "aggregate.csv")
    assert len(aggregate) == 8 and set(aggregate["method"]) == {"SAC MlpPolicy", "SAC LSPPolicy"}
    assert (figures / "Pendulum-v1.png").stat().st_size > 0
    text = results.read_text()
    assert "<!-- benchmarks.run tiny: begin -->" in text and "## Tiny Pendulum grid" in text
    assert "| Pendulum-v1 | SAC LSPPolicy | 2 | 600 (+ 0) |" in text
    assert "python -m benchmarks.run" in text and "Machine:" in text and "results/tiny/Pendulum-v1.png" in text
    assert "--seeds 1" in text and "Not run yet" not in text  # both commands recorded; the grid is complete

    # Second invocation: finished runs are skipped (models untouched); a run without its `done`
    # marker (interrupted) is trained again from scratch. Other sections of RESULTS.md survive.
    results.write_text(text + "\n## Speed\n\nsomeone else's table\n")
    mtimes = {run: (run / "Pendulum-v1.zip").stat().st_mtime_ns for run in runs}
    interrupted = output / "runs" / "SAC_LSPPolicy" / "Pendulum-v1" / "seed_1"
    (interrupted / "done").unlink()
    log, _, _ = run_harness(config, tmp_path)
    assert log.count("skip (done)") == 3 and log.count("restart (interrupted)") == 1 and log.count("done: ") == 1
    for run in runs:
        assert ((run / "Pendulum-v1.zip").stat().st_mtime_ns == mtimes[run]) == (run != interrupted)
    text = results.read_text()
    assert text.count("<!-- benchmarks.run tiny: begin -->") == 1 and "someone else's table" in text

    # A fresh output folder (another session or machine): the runs recorded in results/tiny/ are
    # not trained again, and the results keep them.
    log, _, _ = run_harness(config, tmp_path, "--output", str(tmp_path / "fresh"), "--list")
    assert log.count("recorded: ") == 4 and "pending" not in log
    log, _, _ = run_harness(config, tmp_path, "--output", str(tmp_path / "fresh"))
    assert log.count("skip (recorded)") == 4 and "done: " not in log
    assert not (tmp_path / "fresh" / "runs").exists()
    text = results.read_text()
    assert "| Pendulum-v1 | SAC LSPPolicy | 2 | 600 (+ 0) |" in text
    # The commands listed are those that made runs: not the fresh folder's, which trained nothing.
    assert "fresh" not in text and "--seeds 1" in text


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_hierarchy_fine_tuning_and_shaping_on_the_maze(tmp_path: Path) -> None:
    shaping = {"sb3_lsp.InfoReward": {"terms": {"reward_speed": 1.0, "reward_survive": 1.0}}}
    config = {
        "name": "tiny_maze",
        "seeds": [0],
        "budget": 200,
        "eval": {"every": 200, "episodes": 1},
        "shared": TINY_SHARED,
        "envs": [{"name": "maze goal 2", "id": "sb3_lsp/PointCrossMaze-v0", "env_kwargs": {"goal": 2}}],
        "pretrained": {"motion": {"env": "sb3_lsp/PointAnyDirection-v0", "algo": "sac", "policy": "LSPPolicy", "budget": 200}},
        "methods": [
            {
                "name": "hierarchy",
                "algo": "sac",
                "policy": "LSPPolicy",
                "hierarchy": [{"level": "motion", "wrapper": {"lower_obs": 2, "prior_coef": 0.1}}],
            },
            {
                "name": "fine-tune, shaped",
                "algo": "sac",
                "policy": "LSPPolicy",
                "init_from": "motion",
                "env_wrapper": [shaping],
            },
        ],
    }
    log, output, results = run_harness(config, tmp_path)
    assert log.index("done: pretrained motion") < log.index("done: hierarchy")
    evaluations = read_evaluations(output / "runs" / "hierarchy" / "maze_goal_2" / "seed_0")
    assert evaluations["success_rate"].notna().all() and evaluations["final_distance"].gt(0).all()
    # its RL Zoo config.yml names the frozen level where the output folder has it (rl_zoo3.enjoy replays the run)
    run_folder = output / "runs" / "hierarchy" / "maze_goal_2" / "seed_0"
    zoo_config = dict(yaml.unsafe_load((run_folder / "sb3_lsp-PointCrossMaze-v0" / "config.yml").read_text()))
    (wrapper,) = zoo_config["env_wrapper"]
    level = output.resolve() / "pretrained" / "motion" / "seed_0" / "sb3_lsp-PointAnyDirection-v0.zip"
    assert wrapper["sb3_lsp.LatentActionWrapper"]["lower"] == str(level) and level.is_file()
    text = results.read_text()
    assert "success rate | final distance (m)" in text and "| maze goal 2 | hierarchy | 1 | 200 (+ 200) |" in text

    # In a fresh output folder every run is recorded, the pretrained level included: nothing to train.
    log, _, _ = run_harness(config, tmp_path, "--output", str(tmp_path / "fresh"), "--list")
    assert log.count("recorded: ") == 3 and "pending" not in log
    # A method added to the config needs the pretrained level's model: it is trained again there,
    # and only the new method's run with it.
    fine_tune = {"name": "fine-tune", "algo": "sac", "policy": "LSPPolicy", "init_from": "motion"}
    added = config | {"methods": [*config["methods"], fine_tune]}
    log, _, results = run_harness(added, tmp_path, "--output", str(tmp_path / "added"))
    assert log.count("skip (recorded)") == 2 and log.count("done: ") == 2
    assert log.index("done: pretrained motion") < log.index("done: fine-tune | maze goal 2")
    assert "| maze goal 2 | fine-tune | 1 | 200 (+ 200) |" in results.read_text()
    assert "| maze goal 2 | hierarchy | 1 | 200 (+ 200) |" in results.read_text()


@pytest.mark.timeout(240)
def test_a_level_trained_elsewhere_is_shared_by_every_seed(tmp_path: Path) -> None:
    """A ``model:`` level (e.g. an RL Zoo run's model, committed) is not trained again, for any seed;
    runs on it record its digest, and a wrong budget or a missing file is refused before any run."""
    from stable_baselines3 import SAC

    import sb3_lsp  # noqa: F401  (registers the environments)

    level = SAC(
        "LSPPolicy", "sb3_lsp/PointAnyDirection-v0", learning_starts=50, batch_size=32, policy_kwargs={"net_arch": [32, 32]}
    )
    level.learn(100)
    level.save(tmp_path / "motion.zip")
    given = {"model": str(tmp_path / "motion.zip"), "env": "sb3_lsp/PointAnyDirection-v0", "budget": 100}
    config = {
        "name": "given_level",
        "seeds": [0, 1],
        "budget": 150,
        "eval": {"every": 150, "episodes": 1},
        "shared": TINY_SHARED,
        "envs": [{"name": "maze goal 2", "id": "sb3_lsp/PointCrossMaze-v0", "env_kwargs": {"goal": 2}}],
        "pretrained": {"motion": given},
        "methods": [
            {
                "name": "hierarchy",
                "algo": "sac",
                "policy": "LSPPolicy",
                "hierarchy": [{"level": "motion", "wrapper": {"lower_obs": 2}}],
            },
            {"name": "fine-tune", "algo": "sac", "policy": "LSPPolicy", "init_from": "motion"},
        ],
    }
    log, output, results = run_harness(config, tmp_path)
    assert "pretrained" not in log and not (output / "pretrained").exists() and log.count("done: ") == 4
    spec = yaml.safe_load((output / "runs" / "hierarchy" / "maze_goal_2" / "seed_1" / "spec.yml").read_text())
    assert spec["given_levels"]["motion"]["model"] == given["model"] and len(spec["given_levels"]["motion"]["sha256"]) == 64
    assert "| maze goal 2 | fine-tune | 2 | 150 (+ 100) |" in results.read_text()

    for change, message in [
        ({"budget": 200}, "was trained for 100 steps, not budget 200"),
        ({"model": str(tmp_path / "missing.zip")}, "no model at"),
        ({"algo": "sac"}, "unknown key in pretrained 'motion' (a given model): 'algo'"),
    ]:
        log, _, _ = run_harness(
            config | {"pretrained": {"motion": given | change}}, tmp_path, "--output", str(tmp_path / "x"), check=False
        )
        assert message in log and not (tmp_path / "x").exists()


def fake_runs(output: Path, config: dict, command: str, returns: dict[int, float]) -> None:
    """Finished runs without training, as the harness leaves them: seed -> final return of every method."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.yml").write_text(yaml.safe_dump(config))
    (output / "command.txt").write_text(command + "\n")
    record = {"steps_per_s": 1.0, "wall_s": 1.0, "finished": "2025-01-01T00:00:00", "cpu": "cpu", "cpu_count": 1}
    record |= {"workers": 1, "torch_threads": 1, "versions": {"torch": "x"}}
    for folder, spec in grid_specs(load_config(output / "config.yml")):
        if spec["seed"] not in returns:
            continue
        run = output / folder
        run.mkdir(parents=True)
        (run / "spec.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
        # as InfoEvalCallback writes it: one evaluation of one episode, at the end
        np.savez(run / "evaluations", timesteps=[spec["budget"]], results=[[returns[spec["seed"]]]], wall_time_s=[1.0])
        (run / "run.json").write_text(json.dumps(record))
        (run / "done").touch()


FAKE_CONFIG = {
    "name": "fake",
    "budget": 100,
    "eval": {"every": 100, "episodes": 1},
    "envs": [{"id": "Pendulum-v1"}],
    "methods": [{"name": "A", "algo": "sac", "policy": "MlpPolicy"}],
}


def test_iqm_with_five_seeds(tmp_path: Path) -> None:
    """With >= 5 seeds the table gains rliable's IQM and its bootstrap interval."""
    pytest.importorskip("rliable", reason="rliable comes with the bench extra")
    fake_runs(
        tmp_path, FAKE_CONFIG | {"seeds": [0, 1, 2, 3, 4]}, "python -m benchmarks.run fake.yml", {s: s for s in range(5)}
    )
    write_results(tmp_path, tmp_path / "RESULTS.md")
    text = (tmp_path / "RESULTS.md").read_text()
    assert "IQM [95% CI]" in text and "| Pendulum-v1 | A | 5 | 100 (+ 0) | 2.0 ± 1.6 | 2.0 [" in text


def test_the_iqm_interval_is_the_same_whatever_ran_before() -> None:
    """rliable resamples with numpy's global generator: the interval must not depend on its state."""
    pytest.importorskip("rliable", reason="rliable comes with the bench extra")
    scores = np.array([6224.0, 4804.0, 5491.0, 6096.0, 5625.0, 3343.0, 5054.0])
    np.random.seed(1)
    first = iqm_with_interval(scores)
    np.random.seed(2)
    assert iqm_with_interval(scores) == first
    assert np.random.random() == np.random.RandomState(2).random()  # and the caller's generator is as it was


def test_curves_of_equal_total_budget_end_together(tmp_path: Path) -> None:
    """With curves_count_pretraining a stagewise method's curve starts after its pretrained level's steps."""
    config = FAKE_CONFIG | {
        "seeds": [0, 1],
        "budget": 200,
        "curves_count_pretraining": True,
        "pretrained": {"level0": {"env": "Pendulum-v1", "algo": "sac", "policy": "LSPPolicy", "budget": 150}},
        "methods": [
            {"name": "one level", "algo": "sac", "policy": "LSPPolicy"},
            {"name": "two levels", "algo": "sac", "policy": "LSPPolicy", "budget": 50, "hierarchy": [{"level": "level0"}]},
        ],
    }
    fake_runs(tmp_path, config, "python -m benchmarks.run levels.yml", {0: 10.0, 1: 30.0})
    write_results(tmp_path, tmp_path / "RESULTS.md")
    assert "| Pendulum-v1 | two levels | 2 | 50 (+ 150) | 20.0 ± 14.1 |" in (tmp_path / "RESULTS.md").read_text()
    evaluations = pd.read_csv(tmp_path / "results" / "fake" / "aggregate.csv")

    total = learning_curves(evaluations, "Pendulum-v1", "mean_return", ["one level", "two levels"], count_pretraining=True)
    own = learning_curves(evaluations, "Pendulum-v1", "mean_return", ["one level", "two levels"], count_pretraining=False)
    assert total["one level"].index.tolist() == own["one level"].index.tolist() == [200]
    assert total["two levels"].index.tolist() == [200] and own["two levels"].index.tolist() == [50]
    assert total["two levels"]["mean"].tolist() == [20.0] and total["two levels"]["count"].tolist() == [2]


def test_evaluation_rows_from_evaluations_npz_and_from_an_earlier_releases_csv(tmp_path: Path) -> None:
    returns, distances = [[1.0, 3.0], [2.0, 6.0]], [[0.5, 1.5], [0.0, 1.0]]
    (tmp_path / "npz").mkdir()
    np.savez(
        tmp_path / "npz" / "evaluations",
        timesteps=[100, 200],
        results=returns,
        ep_lengths=[[5, 5], [5, 5]],
        successes=[[False, False], [True, False]],
        distance_to_goal=distances,
        wall_time_s=[1.5, 3.0],
    )
    rows = read_evaluations(tmp_path / "npz")
    assert rows["step"].tolist() == [100, 200] and rows["episodes"].tolist() == [2, 2]
    np.testing.assert_allclose(rows["mean_return"], np.mean(returns, axis=1))
    np.testing.assert_allclose(rows["std_return"], np.std(returns, axis=1))
    assert rows["success_rate"].tolist() == [0.0, 0.5] and rows["final_distance"].tolist() == [1.0, 0.5]
    assert rows["time_s"].tolist() == [1.5, 3.0]
    # Run folders of releases before evaluations.npz hold these rows as evaluations.csv: read as they are
    (tmp_path / "csv").mkdir()
    rows.to_csv(tmp_path / "csv" / "evaluations.csv", index=False)
    pd.testing.assert_frame_equal(read_evaluations(tmp_path / "csv"), rows, check_dtype=False)


def test_results_accumulate_across_output_folders(tmp_path: Path) -> None:
    """The committed results folder is the record: parts of a grid run in different (lost) output folders add up."""
    config, results = FAKE_CONFIG | {"seeds": [0, 1]}, tmp_path / "RESULTS.md"
    record = tmp_path / "results" / "fake"

    fake_runs(tmp_path / "first", config, "python -m benchmarks.run fake.yml --seeds 0", {0: 10.0})
    write_results(tmp_path / "first", results)
    assert "| Pendulum-v1 | A | 1 | 100 (+ 0) | 10.0 ± n/a |" in results.read_text()
    assert "**Not run yet** (1 of 2 runs" in results.read_text()

    # Another session: the first output folder is gone, seed 1 runs in a new one.
    shutil.rmtree(tmp_path / "first")
    fake_runs(tmp_path / "second", config, "python -m benchmarks.run fake.yml --seeds 1", {1: 20.0})
    write_results(tmp_path / "second", results)
    text = results.read_text()
    assert "| Pendulum-v1 | A | 2 | 100 (+ 0) | 15.0 ± 7.1 |" in text and "Not run yet" not in text
    assert "`python -m benchmarks.run fake.yml --seeds 0`, `python -m benchmarks.run fake.yml --seeds 1`" in text
    assert "Compute: 2 runs" in text
    assert pd.read_csv(record / "aggregate.csv")["seed"].tolist() == [0, 1]
    assert pd.read_csv(record / "runs.csv")[["kind", "name", "seed"]].values.tolist() == [["grid", "A", 0], ["grid", "A", 1]]

    # A run finished again in the output folder replaces its recorded copy.
    fake_runs(tmp_path / "third", config, "python -m benchmarks.run fake.yml --seeds 0", {0: 30.0})
    write_results(tmp_path / "third", results)
    assert "| Pendulum-v1 | A | 2 | 100 (+ 0) | 25.0 ± 7.1 |" in results.read_text()
    assert len(pd.read_csv(record / "aggregate.csv")) == 2 and len(pd.read_csv(record / "runs.csv")) == 2

    # A changed config (budget) invalidates the recorded runs: they are dropped and listed as not run.
    fake_runs(tmp_path / "fourth", config | {"budget": 200}, "python -m benchmarks.run fake.yml --seeds 1", {1: 40.0})
    write_results(tmp_path / "fourth", results)
    text = results.read_text()
    assert "| Pendulum-v1 | A | 1 | 200 (+ 0) | 40.0 ± n/a |" in text and "A on Pendulum-v1, seeds [0]." in text
    assert pd.read_csv(record / "aggregate.csv")["step"].tolist() == [200]


def test_a_record_without_runs_csv_is_not_overwritten(tmp_path: Path) -> None:
    """Records written before runs.csv existed cannot be checked: aggregating a part over them stops with a clear error."""
    config, results = FAKE_CONFIG | {"seeds": [0, 1]}, tmp_path / "RESULTS.md"
    fake_runs(tmp_path / "first", config, "python -m benchmarks.run fake.yml", {0: 10.0, 1: 20.0})
    write_results(tmp_path / "first", results)
    record = tmp_path / "results" / "fake"
    (record / "runs.csv").unlink()
    saved = (record / "aggregate.csv").read_text()

    fake_runs(tmp_path / "second", config, "python -m benchmarks.run fake.yml --seeds 1", {1: 30.0})
    command = [sys.executable, "-m", "benchmarks.aggregate", str(tmp_path / "second"), "--results", str(results)]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0 and "Traceback" not in completed.stderr
    assert "holds 1 run(s) that this output folder lacks" in completed.stderr and "move that folder aside" in completed.stderr
    assert (record / "aggregate.csv").read_text() == saved

    # The whole grid finished again in one output folder loses nothing: it may replace the record.
    fake_runs(tmp_path / "third", config, "python -m benchmarks.run fake.yml", {0: 40.0, 1: 50.0})
    write_results(tmp_path / "third", results)
    assert pd.read_csv(record / "aggregate.csv")["mean_return"].tolist() == [40.0, 50.0]


def living_processes() -> dict[int, int]:
    """Every living (not zombie) process id, with its parent's id, read from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing paren.
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):  # the process ended while being read
            continue
        if state != "Z":
            parents[int(stat.parent.name)] = int(parent)
    return parents


def descendants(pid: int) -> set[int]:
    """The process ids of every living descendant of ``pid``."""
    parents = living_processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def ray_runs(root: int) -> set[int]:
    """The descendants of ``root`` that train a run: Ray workers titled after the task (``ray::train_run``)."""
    found = set()
    for pid in descendants(root):  # not other Ray instances' runs on this machine
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::train_run"):
                found.add(pid)
        except OSError:  # the process ended while being read
            continue
    return found


def wait_for_a_run(harness: subprocess.Popen, root: int, timeout: float = 90) -> set[int]:
    """Wait until a Ray worker below ``root`` (the Ray instance's first process) trains a run of ``harness``."""
    deadline = time.monotonic() + timeout
    while not (runs := ray_runs(root)):
        assert harness.poll() is None and time.monotonic() < deadline, "no run started"
        time.sleep(0.2)
    return runs


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.timeout(180)
def test_killing_the_harness_stops_its_runs(tmp_path: Path) -> None:
    """
    A ``kill`` of the harness (SIGTERM to it alone, not its process group) ends the runs it started.
    Its runs have the harness's priority (started at nice +3 here), not Ray's worker niceness 15.
    """
    config = {
        "name": "long",
        "title": "One long run",
        "seeds": [0],
        "budget": 1_000_000,
        "eval": {"every": 500_000, "episodes": 1},
        "shared": TINY_SHARED,
        "envs": [{"id": "Pendulum-v1"}],
        "methods": [{"name": "SAC MlpPolicy", "algo": "sac", "policy": "MlpPolicy"}],
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "benchmarks.run", str(tmp_path / "config.yml"), "--workers", "1"]
    command += ["--output", str(tmp_path / "out"), "--results", str(tmp_path / "RESULTS.md")]
    harness = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.nice(3)
    )
    try:
        runs = wait_for_a_run(harness, harness.pid)  # the local Ray instance is the harness's own
    except AssertionError:
        harness.terminate()  # do not leave it training a million steps
        raise
    started = descendants(harness.pid)
    run_priorities = {os.getpriority(os.PRIO_PROCESS, pid) for pid in runs}  # checked last: the kill comes first

    harness.terminate()
    harness.wait(timeout=30)
    deadline = time.monotonic() + 30
    while started & living_processes().keys() and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = started & living_processes().keys()
    for pid in orphans:  # do not leave them training after a failure
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "processes of the killed harness still run"
    assert not (tmp_path / "out" / "runs" / "SAC_MlpPolicy" / "Pendulum-v1" / "seed_0" / "done").exists()
    assert run_priorities == {os.nice(0) + 3}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.timeout(300)
def test_a_grid_on_a_ray_cluster_survives_a_killed_worker(tmp_path: Path) -> None:
    """
    On a Ray cluster started as a user starts one (``ray start --head``), joined with ``--address``:
    a worker process killed mid-run is retried, and the grid completes with every run recorded once.
    """
    # Token authentication, as a user sets it up (README), with this test's own token; --block keeps
    # the head in the foreground, so that stopping it stops this cluster only.
    (tmp_path / "token").write_text(secrets.token_hex(32))
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "token")}
    port = 6400 + os.getpid() % 1000
    start = [sys.executable, "-c", "from ray.scripts.scripts import main; main()", "start", "--head", "--block"]
    start += [f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false"]
    start += ["--disable-usage-stats"]
    head_log = tmp_path / "head.log"
    with head_log.open("w") as file:
        head = subprocess.Popen(start, stdout=file, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in head_log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, head_log.read_text()
            time.sleep(0.5)
        config = {
            "name": "cluster",
            "title": "Tiny grid on a Ray cluster",
            "seeds": [0],
            "budget": 1200,
            "eval": {"every": 600, "episodes": 2},
            "shared": TINY_SHARED,
            "envs": [{"id": "Pendulum-v1"}],
            "methods": MLP_AND_LSP,
        }
        (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
        output, results = tmp_path / "out", tmp_path / "RESULTS.md"
        command = [sys.executable, "-m", "benchmarks.run", str(tmp_path / "config.yml"), "--address", f"127.0.0.1:{port}"]
        command += ["--output", str(output), "--results", str(results)]
        harness = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        victim = min(wait_for_a_run(harness, head.pid))
        time.sleep(2)  # mid-run: past the imports, training
        os.kill(victim, signal.SIGKILL)
        log, _ = harness.communicate(timeout=240)
        assert harness.returncode == 0, log

        # Without --address the harness starts its own instance, even with this cluster running
        # (a bare ray.init() would join it, and refuses num_cpus there).
        local = {**config, "name": "local", "seeds": [0], "budget": 300, "eval": {"every": 300, "episodes": 1}}
        (tmp_path / "local").mkdir()
        local_log, _, _ = run_harness(local, tmp_path / "local")
        assert "Started a local Ray instance" in local_log and "Connecting to existing Ray cluster" not in local_log
    finally:
        head.send_signal(signal.SIGINT)  # `ray start --block` stops its processes at once on SIGINT (SIGTERM drains 30 s)
        head.communicate(timeout=60)

    runs = pd.read_csv(tmp_path / "results" / "cluster" / "runs.csv")
    assert sorted(zip(runs["name"], runs["seed"], strict=True)) == sorted(
        (method, 0) for method in ("SAC MlpPolicy", "SAC LSPPolicy")
    )
    for folder in output.glob("runs/*/Pendulum-v1/seed_*"):
        assert (folder / "done").is_file() and (folder / "Pendulum-v1.zip").is_file()
        assert read_evaluations(folder)["step"].tolist() == [600, 1200]
    assert "Task train_run failed. There are 3 retries remaining, so the task will be retried" in log  # the kill hit a run
    assert log.count("done: ") == 2 and "FAILED" not in log
    assert "| Pendulum-v1 | SAC LSPPolicy | 1 | 1200 (+ 0) |" in results.read_text()


def test_methods_cannot_override_shared_settings() -> None:
    config = {
        "shared": {"batch_size": 256, "policy_kwargs": {"net_arch": [64]}},
        "budget": 1,
        "eval": {"every": 1, "episodes": 1},
    }
    for method in ({"hyperparams": {"batch_size": 64}}, {"policy_kwargs": {"net_arch": [32]}}):
        with pytest.raises(ValueError, match="compared runs must share"):
            make_spec(config, {"algo": "sac", "policy": "MlpPolicy", **method}, {"id": "Pendulum-v1"}, 0, "m")


@pytest.mark.parametrize("config_path", sorted((REPO / "benchmarks" / "configs").glob("*.yml")), ids=lambda p: p.stem)
def test_shipped_configs_build(config_path: Path, tmp_path: Path) -> None:
    """Every shipped config expands, and every run that needs no pretrained level trains as an RL Zoo run (one step)."""
    config = load_config(config_path)
    for index, (_, spec) in enumerate([*(run for phase in pretrained_specs(config) for run in phase), *grid_specs(config)]):
        if spec["seed"] == config["seeds"][0] and not spec["hierarchy"] and spec["init_from"] is None:
            # one step, one evaluation episode, no 1e6-transition buffer: the settings build and run
            spec = spec | {"budget": 1, "eval_episodes": 1, "hyperparams": spec["hyperparams"] | {"buffer_size": 1000}}
            (tmp_path / str(index) / "run").mkdir(parents=True)
            assert _train_into(spec, tmp_path / str(index) / "run", {}, workers=1)["steps"] == 1


def test_shared_settings_can_name_an_entry_of_the_shipped_hyperparams(tmp_path: Path) -> None:
    entry = yaml.safe_load((REPO / "hyperparams" / "sac_lsp.yml").read_text())["sb3_lsp/PointAnyDirection-v0"]
    config = {**FAKE_CONFIG, "seeds": [0], "shared": {"zoo": {"file": "sac_lsp.yml", "env": "sb3_lsp/PointAnyDirection-v0"}}}
    config["shared"] |= {"gamma": 0.95, "policy_kwargs": {"net_arch": [64]}}
    (tmp_path / "zoo.yml").write_text(yaml.safe_dump(config))
    shared = load_config(tmp_path / "zoo.yml")["shared"]
    # the entry's model settings, not its run settings (steps, policy), and the config's own keys on top
    assert "n_timesteps" not in shared and "policy" not in shared and "zoo" not in shared
    assert shared["learning_rate"] == entry["learning_rate"] and shared["tau"] == entry["tau"] and shared["gamma"] == 0.95
    assert shared["policy_kwargs"] == {**entry["policy_kwargs"], "net_arch": [64]}

    for reference, message in [
        ({"file": "sac_lsp.yml", "env": "Nope-v0"}, "has no entry 'Nope-v0'; its entries: "),
        ({"file": "nope.yml", "env": "Pendulum-v1"}, "no shipped file of that name: hierarchy_ant_maze.yml"),
        ("sac_lsp.yml", "zoo must be {file: <hyperparams file>, env: <its entry>}"),
    ]:
        (tmp_path / "zoo.yml").write_text(yaml.safe_dump({**config, "shared": {"zoo": reference}}))
        with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
            load_config(tmp_path / "zoo.yml")
    as_string = {"zoo": {"file": "sac_lsp.yml", "env": "Pendulum-v1"}, "policy_kwargs": "dict(net_arch=[64])"}
    (tmp_path / "zoo.yml").write_text(yaml.safe_dump({**config, "shared": as_string}))
    with pytest.raises(ValueError, match="policy_kwargs must be a mapping to be merged"):
        load_config(tmp_path / "zoo.yml")


@pytest.mark.parametrize("config_path", sorted((REPO / "benchmarks" / "configs").glob("*.yml")), ids=lambda p: p.stem)
def test_every_recorded_run_is_still_a_run_of_its_shipped_config(config_path: Path) -> None:
    """A config edited so that it resolves to other run specs would silently drop its recorded runs from the report."""
    config = load_config(config_path)
    record = REPO / "benchmarks" / "results" / slug(config["name"]) / "runs.csv"
    if not record.is_file():
        pytest.skip(f"{config['name']} has no recorded runs yet")
    unchanged = unchanged_records(read_record(record), expected_runs(config))
    assert [key for key, same in unchanged if not same] == []


@pytest.mark.timeout(300)
def test_ant_maze_cost_times_every_stage_of_the_shipped_config() -> None:
    """The Ant maze cost script runs the shipped full-scale config's stages (a few updates each) and reports them."""
    command = [sys.executable, "-m", "benchmarks.ant_maze_cost", "--updates", "20", "--decisions", "10"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=280)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = [line.split(" | ") for line in completed.stdout.splitlines() if line.startswith("| ") and "| stage |" not in line]
    assert [row[0] for row in rows] == [
        "| level 0 (sb3_lsp/AntAnyDirection-v0)",
        "| level 1 (sb3_lsp/AntCrossMaze-v0, latent held 3 steps)",
        "| single-level baseline (sb3_lsp/AntCrossMaze-v0)",
    ]
    for _, unit, rate, per_100k, full in rows:
        total, hours = full.split(f" {unit}: ")
        assert float(rate) > 0 and float(per_100k.split()[0]) == pytest.approx(1e5 / float(rate) / 60, rel=0.05, abs=0.1)
        assert float(hours.split()[0]) == pytest.approx(float(total) / float(rate) / 3600, rel=0.05, abs=0.1)
    assert "4000000 steps" in rows[0][4] and "1000000 decisions" in rows[1][4] and "3000000 steps" in rows[2][4]


def test_speed_script_prints_its_table_for_given_flow_settings() -> None:
    command = [sys.executable, "-m", "benchmarks.speed", "--repetitions", "1", "--updates", "20", "--learning-starts", "100"]
    command += ["--micro-iterations", "5", "--threads", "1", "--batch-size", "64"]
    command += ["--lsp-kwargs", '{"fused_coupling": true, "gaussian_base": true}']
    result = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'LSPPolicy flow settings: {"fused_coupling": true, "gaussian_base": true}' in result.stdout
    rows = [line for line in result.stdout.splitlines() if re.search(r" \| \d+\.\d\dx", line)]
    assert len(rows) == 9 and rows[0].startswith("| SAC training, env steps/s")
    # timed rows: the median of the repetitions' paired ratios, with its range (one repetition: all equal)
    ratio, low, high = re.search(r"\| (\d+\.\d\d)x \[(\d+\.\d\d)-(\d+\.\d\d)\] \|$", rows[0]).groups()
    assert ratio == low == high and float(ratio) > 0
    ops = {row.split(" | ")[0][2:]: [int(cell) for cell in row.split(" | ")[1:3]] for row in rows if "(aten ops)" in row}
    measures = (LOG_PROB_FORWARD, LOG_PROB_FORWARD_BACKWARD, GRADIENT_STEP)
    forward, forward_backward, gradient_step = (ops[f"{measure.format(batch_size=64)} (aten ops)"] for measure in measures)
    # the backward pass dispatches ops of its own, and a gradient step adds the critic and the
    # optimisers to the actor's forward and backward, for each policy
    assert all(0 < a < b < c for a, b, c in zip(forward, forward_backward, gradient_step, strict=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["envs"][0].update(env_kwarg={"goal": 1}),
            "unknown key in env 'Pendulum-v1': 'env_kwarg'; did you mean 'env_kwargs'",
        ),
        (lambda c: c.update(seed=[0]), "unknown key in the config: 'seed'; did you mean 'seeds'"),
        (lambda c: c["methods"][0].update(polcy_kwargs={}), "did you mean 'policy_kwargs'"),
        (lambda c: c["eval"].update(episodes=0), "eval.episodes must be a positive integer"),
        (lambda c: c.update(budget="1e4"), "budget must be a positive integer, got the string '1e4'"),
    ],
)
def test_config_mistakes_are_refused_before_any_run(tmp_path: Path, change, message: str) -> None:
    config = {
        "name": "typos",
        "seeds": [0],
        "budget": 100,
        "eval": {"every": 50, "episodes": 2},
        "envs": [{"id": "Pendulum-v1"}],
        "methods": [{"name": "a", "algo": "sac", "policy": "LSPPolicy"}],
    }
    change(config)
    (tmp_path / "typos.yml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchmarks.run", str(tmp_path / "typos.yml"), "--output", str(out)]
    result = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and message in result.stderr
    assert not out.exists()  # nothing written


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "benchmarks/configs/pendulum_small.yml",
        "--workers",
        "0",
        "--output",
        str(out),
    ]
    result = subprocess.run(command, cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--workers: must be at least 1, got 0" in result.stderr
    assert not out.exists()


def test_heading_coverage_of_a_level_0(tmp_path: Path) -> None:
    """The script rolls held latents out through the level and reports what it measured: a table and a polar PNG."""
    from stable_baselines3 import SAC

    import sb3_lsp  # noqa: F401  (registers the environments)

    SAC("LSPPolicy", "sb3_lsp/PointAnyDirection-v0", seed=0).save(tmp_path / "level0.zip")
    command = [sys.executable, "-m", "benchmarks.heading_coverage", str(tmp_path / "level0.zip")]
    command += [
        "--env",
        "sb3_lsp/PointAnyDirection-v0",
        "--latents",
        "16",
        "--steps",
        "20",
        "--output",
        str(tmp_path / "h.png"),
    ]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    row = next(line for line in completed.stdout.splitlines() if line.startswith("| one latent held (16) |"))
    median, sectors = float(row.split(" | ")[1].split()[0]), int(row.rstrip(" |").split(" | ")[-1])
    # an untrained level still moves the point (its actions are not zero), in some directions
    assert median > 0 and 1 <= sectors <= 16
    assert (tmp_path / "h.png").stat().st_size > 10_000


#: The runnable modules of benchmarks/ (``python -m benchmarks.X``); benchmarks.grid is a library.
BENCHMARK_SCRIPTS = sorted(path.stem for path in Path("benchmarks").glob("*.py") if "def main(" in path.read_text())


@pytest.mark.parametrize("script", BENCHMARK_SCRIPTS)
def test_benchmark_scripts_parse_their_arguments_in_main_only(script: str) -> None:
    """Importing a script (to reuse a function, or by a doc build) runs nothing and reads no argv."""
    code = f"import sys; sys.argv = ['x', '--no-such-option']; import benchmarks.{script} as m; assert callable(m.main)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_maze_exploration_counts_the_training_episodes_that_reach_the_goal() -> None:
    command = [sys.executable, "-m", "benchmarks.maze_exploration", "--mode", "flat", "--decisions", "300"]
    command += ["--episode-steps", "100"]  # 10 decisions per episode: 30 training episodes
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    pattern = r"flat repeat 10, 100-step episodes, goal 0, seed 0: (\d+) of (\d+) training episodes"
    summary = re.search(pattern, completed.stdout)
    assert summary is not None, completed.stdout
    reached, episodes = map(int, summary.groups())
    assert episodes == 30 and 0 <= reached <= episodes


def test_flow_anatomy_of_an_untrained_gaussian_start_flow_finds_the_couplings_add_nothing(tmp_path: Path) -> None:
    """At initialisation the default flow is SB3's Gaussian: its couplings change no action and no density."""
    from stable_baselines3 import SAC

    SAC("LSPPolicy", "sb3_lsp/MultiGoal-v0", buffer_size=10, seed=0).save(tmp_path / "model.zip")
    command = [sys.executable, "-m", "benchmarks.flow_anatomy", str(tmp_path / "model.zip"), "--env", "sb3_lsp/MultiGoal-v0"]
    completed = subprocess.run([*command, "--steps", "30"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"coupling log\|det\| -?0\.00, sampled shift 0\.000, deterministic shift 0\.000", completed.stdout)


def test_twin_runs_of_sb3s_actor_and_the_gaussian_layer_agree_until_rounding_grows(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "benchmarks.twin_runs", "--env", "Pendulum-v1", "--buffer-steps", "300"]
    command += ["--blocks", "1", "30", "--out", str(tmp_path)]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(tmp_path / "twin_runs.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(row["pair"], row["updates"]) for row in rows] == [
        ("MlpPolicy vs Gaussian layer", "1"),
        ("MlpPolicy vs Gaussian layer", "31"),
        ("MlpPolicy vs MlpPolicy + 1e-7", "1"),
        ("MlpPolicy vs MlpPolicy + 1e-7", "31"),
    ]
    for row in rows:  # 31 updates: rounding has not grown yet
        assert float(row["actor_max_abs_diff"]) < 1e-5 and float(row["critic_max_abs_diff"]) < 1e-5
        assert float(row["ent_coef"]) == pytest.approx(float(row["twin_ent_coef"]), abs=1e-6) and float(row["ent_coef"]) < 1
