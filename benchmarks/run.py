"""
Benchmark harness: a grid of (method, environment, seed) runs for a step budget, with periodic
deterministic evaluation, run in parallel on Ray (locally or on a cluster), resumable, then
aggregated into RESULTS.md.

    python -m benchmarks.run benchmarks/configs/pendulum_small.yml [--workers N] [--output DIR] [--results FILE]
    python -m benchmarks.run CONFIG --address HEAD:6379   (on a Ray cluster: `ray start --head` on one
                                  machine, `ray start --address=HEAD:6379` on the others)
    python -m benchmarks.run CONFIG --list        (print the grid and which runs are done; train nothing)
    python -m benchmarks.run CONFIG --envs Hopper-v5 --seeds 0 1 2     (a part of the grid; rerun to add more)
    python -m benchmarks.run CONFIG --methods "SAC LSPPolicy"           (only some methods of the grid)

The config is read and resolved into run specs by :mod:`benchmarks.grid`; this file reads top to
bottom: one run (an ``rl_zoo3.train`` run) -> the grid on Ray -> main.

**Config** (YAML; every hyperparameter is in it or in the RL Zoo entry its ``shared: zoo:`` names)::

    name: pendulum_small                 # RESULTS.md section and default output folder runs/benchmarks/<name>
    title: "SAC: MlpPolicy vs LSPPolicy"  # section heading
    description: "..."                   # one paragraph under the heading (optional)
    seeds: [0, 1, 2]
    budget: 10000                        # environment steps per run (steps of the trained level)
    eval: {every: 2000, episodes: 10}    # deterministic evaluation every N steps and at the end
    curves_count_pretraining: false      # optional: true plots a run at its steps plus those of the
                                         # pretrained levels it builds on (equal-total-budget grids)
    shared:                              # hyperparameters of EVERY method (critic, batch, ...); methods
      batch_size: 128                    # cannot override them, so compared runs share them
      policy_kwargs: {net_arch: [128, 128]}
      # optional: start from an RL Zoo entry of hyperparams/ (its model settings; steps and policy are the
      # grid's), which the keys above override:  zoo: {file: sac_lsp.yml, env: sb3_lsp/PointAnyDirection-v0}
    envs:                                # the env axis; name defaults to id
      - {id: Pendulum-v1}
      - {name: maze-goal-2, id: sb3_lsp/PointCrossMaze-v0, env_kwargs: {goal: 2}, hyperparams: {...}}
    pretrained:                          # optional: levels trained once per seed before the grid
      motion:                            # same keys as a method, plus env / env_kwargs
        {env: sb3_lsp/PointAnyDirection-v0, algo: sac, policy: LSPPolicy, budget: 10000}
      walker:                            # or a level trained elsewhere (an RL Zoo run), shared by every
        {model: benchmarks/results/ant_maze/level0/model.zip, env: sb3_lsp/AntAnyDirection-v0, budget: 500000}
                                         # seed: path from the working directory; budget = its steps
    methods:                             # the method axis
      - name: SAC MlpPolicy
        algo: sac                        # an rl_zoo3.ALGOS key: sac, tqc, ...
        policy: MlpPolicy
      - name: hierarchy
        algo: sac
        policy: LSPPolicy
        policy_kwargs: {n_coupling_layers: 2}      # merged into shared policy_kwargs
        hyperparams: {}                            # method-only hyperparameters (not in shared)
        budget: 20000                              # optional, overrides the global budget
        hierarchy:                                 # frozen levels below, lowest first (LatentActionWrapper)
          - {level: motion, wrapper: {lower_obs: 2, action_prior: gaussian, prior_coef: 0.1}}
        init_from: motion                          # or: start from a pretrained level's weights (fine-tuning)
        env_wrapper: [{sb3_lsp.InfoReward: {terms: {reward_speed: 1.0}}}]   # RL Zoo syntax

Two optional keys: ``diagnostics: {every: N, episodes: M}`` adds :class:`sb3_lsp.SACDiagnostics`
(entropy, Q against returns, success with and without sampling, replay success share, latents) and
writes ``diagnostics.csv`` in each run folder; ``base: other.yml`` takes every key of that config
(a path relative to this one), which this one then overrides (``shared`` key by key); ``methods``
and ``envs`` may then list names of the base's entries (``methods: [hierarchy (2 levels)]``)
instead of copying them.

Hyperparameters are merged shared -> env -> method (policy_kwargs merged key by key). Each run is
an ``rl_zoo3.train`` run (``python -m sb3_lsp.zoo train``) of an RL Zoo YAML entry made from its spec
(:func:`zoo_entry`: the frozen levels and ``env_wrapper`` as the entry's ``env_wrapper``, evaluation,
diagnostics and ``init_from`` as its ``callback`` list, :mod:`sb3_lsp.zoo.callbacks`). Its folder
OUTPUT/runs/<method>/<env>/seed_<s>/ is that RL Zoo run folder (the model ``<env>.zip``, rl_zoo3's
``<env>/config.yml`` and ``args.yml``, Monitor's ``0.monitor.csv``, SB3's TensorBoard logs of training
and evaluation in ``tensorboard/``: ``tensorboard --logdir OUTPUT/runs``), plus ``train.log`` (what
rl_zoo3 printed; the console shows each evaluation's progress line), ``spec.yml`` (the resolved
run), ``evaluations.npz`` (SB3's ``EvalCallback`` file, with the final distance to the goal where
the environment reports it: :class:`sb3_lsp.InfoEvalCallback`), ``run.json`` (timing, machine) and
a ``done`` marker written last. Finished runs are skipped; a folder without ``done`` (an
interrupted run) is deleted and the run starts again. Folders from before runs were RL Zoo runs
hold ``model.zip`` instead, and count as they are.

Each run is a Ray task of one CPU: ``--workers N`` starts a local Ray instance of N CPUs (default:
all cores); ``--address`` joins a running cluster, whose CPUs then set how many runs go in parallel,
and ships this checkout to its machines (Ray's ``working_dir``; each needs the same packages). A
task trains in a temporary folder on whichever machine runs it and returns the folder's files,
which the harness writes into the output folder: nothing needs shared storage, and a run whose
worker dies (a killed process, a lost machine) is retried by Ray from scratch, never half-written.
Stopping the harness (Ctrl-C, ``kill``) stops its runs with it.
Pretrained levels live in OUTPUT/pretrained/<name>/seed_<s>/. The grid runs seed by seed, every
method of an env side by side, so a grid stopped halfway (or run in parts with
``--envs``/``--seeds``/``--methods``) leaves paired comparisons; RESULTS.md lists the runs still missing.
Results add up across output folders: benchmarks/results/<name>/ records every finished run
(``runs.csv``, ``aggregate.csv``), and aggregation keeps recorded runs whose spec is unchanged.
The harness skips those recorded runs as well (``--list`` shows them as ``recorded``): a fresh
output folder trains only what the record lacks, plus the pretrained levels those runs build on.

Monitor wraps the raw environment, under every wrapper of the config, so evaluation returns
(and Monitor's training CSV) are always the raw environment's reward and raw steps, whatever
reward shaping, latent action prior or hierarchy the trained level sees. For maze environments
the final ``info`` of each evaluation episode gives ``is_success`` and ``distance_to_goal``.
"""

import argparse
import contextlib
import functools
import io
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym
import ray
import torch as th
import yaml

import sb3_lsp
from benchmarks.grid import (
    grid_specs,
    level_model,
    levels_named,
    load_config,
    pretrained_specs,
    record_command,
    run_model,
    run_status,
    select,
    skippable_recorded,
    slug,
)

# Configs recorded before InfoReward moved into the package name it benchmarks.run.InfoReward (their
# spec digests include the name); new configs use sb3_lsp.InfoReward.
from sb3_lsp import InfoReward  # noqa: F401
from sb3_lsp.hierarchy.levels import saved_num_timesteps
from sb3_lsp.zoo.__main__ import main as zoo_main
from sb3_lsp.zoo.layerwise import WRAPPER_CLASS, latest_run_folder

#: The module of the callbacks each run's YAML entry names.
CALLBACKS = "sb3_lsp.zoo.callbacks"

# ---------------------------------------------------------------------------------------------
# One run (in its own worker process): an rl_zoo3.train run
# ---------------------------------------------------------------------------------------------


def zoo_entry(spec: dict[str, Any], level_models: dict[str, Path], folder: Path) -> dict[str, Any]:
    """
    The run ``spec`` as an RL Zoo YAML entry: its hyperparameters and steps, its wrappers (the frozen
    hierarchy levels, lowest first, then ``env_wrapper``) and the harness's callbacks: the start from
    ``init_from``, the evaluation (:class:`sb3_lsp.zoo.callbacks.EvalOnEnv`, writing
    ``folder/evaluations.npz``) and the optional diagnostics.

    :param spec: The run spec.
    :param level_models: The model ``.zip`` of each pretrained level the run builds on, by name.
    :param folder: Where the evaluations (and diagnostics) are written.
    """
    wrappers = [
        {WRAPPER_CLASS: {"lower": str(level_models[level["level"]]), **level.get("wrapper", {})}}
        for level in spec["hierarchy"]
    ] + list(spec["env_wrapper"])

    def env(seed: int) -> dict[str, Any]:  # an evaluation environment: the training one, seeded apart
        return {"env_id": spec["env_id"], "seed": seed, "env_kwargs": spec["env_kwargs"], "env_wrapper": wrappers}

    callbacks: list[dict[str, Any]] = []
    if spec["init_from"] is not None:
        callbacks.append({f"{CALLBACKS}.InitFromPretrained": {"model": str(level_models[spec["init_from"]])}})
    evaluation = dict(n_eval_episodes=spec["eval_episodes"], eval_freq=spec["eval_every"], log_path=str(folder))
    evaluation |= dict(env=env(spec["seed"] + 10_000), label=spec["label"], deterministic=True, verbose=0)
    callbacks.append({f"{CALLBACKS}.EvalOnEnv": evaluation})
    if "diagnostics" in spec:
        every, episodes = int(spec["diagnostics"]["every"]), int(spec["diagnostics"]["episodes"])
        diagnostics = dict(
            env=env(spec["seed"] + 20_000), every=every, episodes=episodes, csv_path=str(folder / "diagnostics.csv")
        )
        callbacks.append({f"{CALLBACKS}.DiagnosticsOnEnv": diagnostics})
    entry = {"policy": spec["policy"], "n_timesteps": spec["budget"], **spec["hyperparams"], "callback": callbacks}
    return (
        entry
        | ({"env_kwargs": spec["env_kwargs"]} if spec["env_kwargs"] else {})
        | ({"env_wrapper": wrappers} if wrappers else {})
    )


def zoo_train_args(spec: dict[str, Any], hyperparams_file: Path, log_folder: Path, tensorboard: Path) -> list[str]:
    """The ``rl_zoo3.train`` flags of the run: rl_zoo3's own evaluation off (the entry's callback evaluates),
    SB3's training and evaluation logs to TensorBoard under ``tensorboard``."""
    return [
        "--algo", spec["algo"],
        "--env", spec["env_id"],
        "-conf", str(hyperparams_file),
        "-f", str(log_folder),
        "--tensorboard-log", str(tensorboard),
        "--seed", str(spec["seed"]),
        "--eval-freq", "-1",
        "--device", "cpu",
        "--num-threads", "1",  # one process per run and per core: intra-op threads would oversubscribe
        "--verbose", "0",
    ]  # fmt: skip


class ProgressLines(io.TextIOBase):
    """
    A run's standard output: all of it into ``log``, and on to ``console`` only the lines that start
    with the run's ``label`` (:class:`sb3_lsp.InfoEvalCallback`'s progress lines).
    """

    def __init__(self, log: TextIO, console: TextIO, label: str) -> None:
        self.log, self.console, self.label, self._line = log, console, label, ""

    def write(self, text: str) -> int:
        self.log.write(text)
        *lines, self._line = (self._line + text).split("\n")
        for line in lines:
            if line.startswith(self.label):
                print(line, file=self.console, flush=True)
        return len(text)


def train_run(
    spec: dict[str, Any], level_files: dict[str, tuple[str, ray.ObjectRef]], workers: int
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """
    Train one run in a temporary folder and return its files. Runs as a Ray task, on any machine.

    :param spec: The resolved run spec (see :func:`make_spec`).
    :param level_files: Each pretrained level the run builds on, by name: its model's path in the output
        folder, and the model's bytes in Ray's object store (put there once by the harness, however many
        runs share a level).
    :param workers: Number of runs in parallel (recorded with the timing).
    :return: The content of ``run.json``, and every file of the run folder (path relative to it: bytes).
    """
    with tempfile.TemporaryDirectory(prefix="sb3_lsp_run_") as scratch:
        folder, level_models = Path(scratch) / "run", {}
        folder.mkdir()
        for name, (_, content) in level_files.items():
            level_models[name] = Path(scratch) / f"level_{slug(name)}.zip"
            level_models[name].write_bytes(ray.get(content))
        record = _train_into(spec, folder, level_models, workers)
        # the run's config.yml names the levels where the output folder has them, so that rl_zoo3.enjoy replays it
        config = next(folder.glob("*/config.yml"))
        text = config.read_text()
        for name, (path, _) in level_files.items():
            text = text.replace(str(level_models[name]), path)
        config.write_text(text)
        return record, {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _train_into(spec: dict[str, Any], folder: Path, level_models: dict[str, Path], workers: int) -> dict[str, Any]:
    """
    Train the run ``spec`` with ``rl_zoo3.train`` (in this process, so that a killed worker takes its
    training with it) and make ``folder`` its RL Zoo run folder (model, ``config.yml``, Monitor CSV) plus
    the evaluations and ``run.json``; return run.json's content.
    """
    log_folder = folder.parent / "zoo"
    hyperparams_file = folder.parent / "hyperparams.yml"
    hyperparams_file.write_text(yaml.safe_dump({spec["env_id"]: zoo_entry(spec, level_models, folder)}, sort_keys=False))
    start = time.perf_counter()
    # rl_zoo3's messages (its settings, paths) into the run's train.log: the console of a grid keeps
    # one progress line per evaluation of each run, as the harness printed before runs were RL Zoo runs
    with (folder / "train.log").open("w") as log, contextlib.redirect_stdout(ProgressLines(log, sys.stdout, spec["label"])):
        zoo_main(["train", *zoo_train_args(spec, hyperparams_file, log_folder, folder / "tensorboard")])
    wall_s = time.perf_counter() - start
    zoo_run = latest_run_folder(log_folder, spec["algo"], spec["env_id"])
    for path in zoo_run.iterdir():
        path.rename(folder / path.name)
    (folder / "spec.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    steps = saved_num_timesteps(run_model(folder))

    record = {
        "label": spec["label"],
        "steps": steps,
        "wall_s": round(wall_s, 1),
        "steps_per_s": round(steps / wall_s, 1),  # evaluation included
        "finished": datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "workers": workers,
        "torch_threads": th.get_num_threads(),
        "versions": {"torch": th.__version__, "sb3_lsp": sb3_lsp.__version__},
    }
    (folder / "run.json").write_text(json.dumps(record, indent=2))
    return record


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------------
# The grid: skip finished runs, restart interrupted ones, run the rest as Ray tasks
# ---------------------------------------------------------------------------------------------


def start_ray(address: str | None, workers: int | None) -> int:
    """
    Start a local Ray instance of ``workers`` CPUs, or join the cluster at ``address``; return how
    many runs go in parallel (the CPUs Ray has).

    A cluster's machines get this checkout as Ray's ``working_dir`` (without .git and what
    .gitignore lists, such as runs/ and .venv/), so they run the same code as this machine.
    """
    if address is None:  # "local": a new instance, even where `ray start` left a cluster (ray.init would join it)
        ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False)
    else:
        checkout = Path(__file__).resolve().parents[1]
        try:
            ray.init(address=address, runtime_env={"working_dir": str(checkout)})
        except ConnectionError as error:
            raise SystemExit(
                f"Cannot join the Ray cluster at --address {address}: {str(error).splitlines()[-1]}. Is `ray start --head` "
                "running there? A cluster with token authentication (`ray start`'s default from Ray 2.59) needs "
                "RAY_AUTH_MODE=token here too, and its token in ~/.ray/auth_token (`ray get-auth-token`)."
            ) from None
    return int(ray.cluster_resources().get("CPU", 1))


def run_all(
    runs: list[tuple[Path, dict[str, Any]]],
    output: Path,
    log: Callable[[str], None],
    skipped: set[Path],
    command: str,
    connect: Callable[[], int],
) -> list[str]:
    """
    Run every run that is neither done nor in ``skipped`` (recorded runs), as Ray tasks; return the
    labels of the runs that failed.

    ``connect`` starts Ray (once, when there is a run to train) and returns the number of runs in
    parallel. ``command`` (this invocation) is recorded when its first run finishes: an invocation
    that trained nothing (stopped early, or everything was done already) is not listed in RESULTS.md.
    """
    todo = []
    for folder, spec in runs:
        status = run_status(output / folder, spec, folder in skipped)
        if status in ("done", "recorded"):
            log(f"skip ({status}): {spec['label']}")
            continue
        if status == "interrupted":
            log(f"restart (interrupted): {spec['label']}")
            shutil.rmtree(output / folder)
        (output / folder).mkdir(parents=True)
        (output / folder / "spec.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
        todo.append((folder, spec))
    if not todo:
        return []

    workers = connect()
    # The importable module's function (not __main__'s, under python -m), so that Ray ships it by
    # reference. max_retries: a run whose worker process dies is trained again, from scratch.
    from benchmarks.run import train_run as task

    train = ray.remote(num_cpus=1, max_retries=3)(task)
    pending, stored = {}, {}
    for folder, spec in todo:
        levels = {}
        for name in levels_named(spec):  # each level's model into Ray's object store once, however many runs share it
            path = level_model(spec, name, output)
            if path not in stored:
                stored[path] = ray.put(path.read_bytes())
            levels[name] = (str(path.resolve()), stored[path])
        pending[train.remote(spec, levels, workers)] = (folder, spec)
        log(f"queued: {spec['label']} ({spec['budget']} steps)")
    failed = []
    while pending:
        (finished,), _ = ray.wait(list(pending), num_returns=1)
        folder, spec = pending.pop(finished)
        try:
            record, files = ray.get(finished)
        except ray.exceptions.RayError as error:  # the run raised, or its worker died more than max_retries times
            failed.append(spec["label"])
            log(f"FAILED: {spec['label']}\n{error}")
            continue
        for name, content in files.items():
            (output / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (output / folder / name).write_bytes(content)
        (output / folder / "done").touch()  # last: a folder without it is an interrupted run
        record_command(output, command)
        log(f"done: {spec['label']}: {record['steps']} steps in {record['wall_s']} s ({record['steps_per_s']} steps/s)")
    return failed


def check_envs(runs: Iterable[tuple[Path, dict[str, Any]]]) -> None:
    """Make every raw environment of the grid once: a bad id or goal fails before any run trains."""
    checked = set()
    for _, spec in runs:
        key = (spec["env_id"], json.dumps(spec["env_kwargs"], sort_keys=True))
        if key in checked:
            continue
        try:
            gym.make(spec["env_id"], **spec["env_kwargs"]).close()
        except Exception as error:  # whatever the environment raises, name the run and stop before training
            raise SystemExit(f"{spec['label']}: cannot make {spec['env_id']} with {spec['env_kwargs']}: {error}") from error
        checked.add(key)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="benchmark YAML (see above)")
    parser.add_argument(
        "--workers", type=_at_least_one, default=None, help="parallel runs on this machine (default: all cores)"
    )
    parser.add_argument("--address", default=None, help="run on this Ray cluster (HEAD:6379, from `ray start --head`) instead")
    parser.add_argument("--output", type=Path, default=None, help="default: runs/benchmarks/<name>")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/RESULTS.md"), help="markdown file to update")
    parser.add_argument("--list", action="store_true", help="print the grid and the status of each run; train nothing")
    parser.add_argument("--envs", nargs="+", metavar="NAME", help="run only these envs of the config (names as in it)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="run only these seeds of the config")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help="run only these methods of the config (names as in it)")
    args = parser.parse_args(argv)
    if args.address is not None and args.workers is not None:
        parser.error("--workers sizes a local Ray instance; with --address the cluster's CPUs set the parallel runs")

    config = load_config(args.config)
    output = args.output or Path("runs/benchmarks") / slug(config["name"])
    part = select(config, args.envs, args.seeds, args.methods)
    phases = [*pretrained_specs(part), grid_specs(part)]
    check_envs(run for phase in phases for run in phase)
    # Here, not at the top: Ray workers import this module for train_run, and need no pandas or plots.
    from benchmarks.aggregate import recorded_folders, write_results

    # Runs recorded in results/<name>/ count wherever they ran: a fresh output folder trains only
    # what the record lacks (and the pretrained levels those runs build on).
    skipped = skippable_recorded(part, output, recorded_folders(args.results.parent / "results" / slug(config["name"]), part))

    def log(message: str) -> None:
        print(f"[benchmarks {datetime.now():%H:%M:%S}] {message}", flush=True)

    if args.list:
        for folder, spec in (run for phase in phases for run in phase):
            status = run_status(output / folder, spec, folder in skipped)
            log(
                f"{status:>11}: {spec['label']} ({spec['algo']} {spec['policy']}, {spec['budget']} steps) -> {output / folder}"
            )
        return

    output.mkdir(parents=True, exist_ok=True)
    # aggregate reads the whole grid from here: the config as resolved (a base: merged in), so it
    # reads the same without the base file beside it
    (output / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = shlex.join(["python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    # A `kill` ends the harness through sys.exit, so that Ray shuts down (its atexit hook) and its
    # runs stop with it rather than train on as orphans.
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    connect = functools.cache(lambda: start_ray(args.address, args.workers))  # once, when a run needs it

    for phase in phases:  # pretrained levels first: the grid's runs read them
        failed = run_all(phase, output, log, skipped, command, connect)
        if failed:
            sys.exit(f"{len(failed)} run(s) failed: {', '.join(failed)}. Rerun the same command to retry them.")

    try:
        write_results(output, args.results)
    except FileExistsError as error:
        raise SystemExit(f"The runs are finished in {output}, but the results were not written: {error}") from None
    log(f"results: {args.results}")


if __name__ == "__main__":
    main()
