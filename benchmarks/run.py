"""
Benchmark harness: a grid of (method, environment, seed) runs for a step budget, with periodic
deterministic evaluation, run in parallel on Ray (locally or on a cluster), resumable, then
aggregated into RESULTS.md.

    python -m benchmarks.run benchmarks/configs/pendulum_small.yml [--workers N] [--output DIR] [--results FILE]
    python -m benchmarks.run CONFIG --address HEAD:6379   (on a Ray cluster: `ray start --head` on one
                                  machine, `ray start --address=HEAD:6379` on the others)
    python -m benchmarks.run CONFIG --list        (print the grid and which runs are done; train nothing)
    python -m benchmarks.run CONFIG --envs Hopper-v5 --seeds 0 1 2     (a part of the grid; rerun to add more)

Reads top to bottom: config -> environments -> evaluation -> one run -> the grid -> main.

**Config** (YAML; every hyperparameter is in it, nothing is taken from the RL Zoo's files)::

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

Hyperparameters are merged shared -> env -> method (policy_kwargs merged key by key). Each run
gets a folder OUTPUT/runs/<method>/<env>/seed_<s>/ with ``spec.yml`` (the resolved run),
``evaluations.csv``, the SB3 ``model.zip``, ``run.json`` (timing, machine) and a ``done`` marker
written last. Finished runs are skipped; a folder without ``done`` (an interrupted run) is deleted
and the run starts again.

Each run is a Ray task of one CPU: ``--workers N`` starts a local Ray instance of N CPUs (default:
all cores); ``--address`` joins a running cluster, whose CPUs then set how many runs go in parallel,
and ships this checkout to its machines (Ray's ``working_dir``; each needs the same packages). A
task trains in a temporary folder on whichever machine runs it and returns the folder's files,
which the harness writes into the output folder: nothing needs shared storage, and a run whose
worker dies (a killed process, a lost machine) is retried by Ray from scratch, never half-written.
Stopping the harness (Ctrl-C, ``kill``) stops its runs with it.
Pretrained levels live in OUTPUT/pretrained/<name>/seed_<s>/. The grid runs seed by seed, every
method of an env side by side, so a grid stopped halfway (or run in parts with
``--envs``/``--seeds``) leaves paired comparisons; RESULTS.md lists the runs still missing.
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
import copy
import csv
import functools
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import ray
import torch as th
import yaml
from rl_zoo3 import ALGOS
from rl_zoo3.utils import get_wrapper_class
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecEnv

import sb3_lsp

# Configs recorded before InfoReward moved into the package name it benchmarks.run.InfoReward (their
# spec digests include the name); new configs use sb3_lsp.InfoReward.
from sb3_lsp import InfoReward  # noqa: F401
from sb3_lsp.checks import positive_int, refuse_unknown_keys
from sb3_lsp.diagnostics import SACDiagnostics
from sb3_lsp.hierarchy.levels import saved_num_timesteps

RUN_KEYS = {"name", "algo", "policy", "policy_kwargs", "hyperparams", "budget", "hierarchy", "init_from", "env_wrapper"}
PRETRAINED_KEYS = (RUN_KEYS - {"name"}) | {"env", "env_kwargs"}
#: A pretrained level given as a saved model (trained elsewhere, shared by every seed of the grid).
GIVEN_LEVEL_KEYS = {"model", "env", "budget"}
TOP_KEYS = {"name", "title", "description", "seeds", "budget", "eval", "curves_count_pretraining", "shared", "envs"}
TOP_KEYS |= {"pretrained", "methods", "diagnostics"}
ENV_KEYS = {"name", "id", "env_kwargs", "hyperparams"}


# ---------------------------------------------------------------------------------------------
# Config: one YAML file -> a list of fully resolved run specs (plain dicts, saved as spec.yml)
# ---------------------------------------------------------------------------------------------


def slug(name: str) -> str:
    """A folder name for a method or environment name."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")


def _picked(base: list[dict[str, Any]], names: list[Any], what: str, path: Path) -> list[dict[str, Any]]:
    """Entries of the base config's list, by name (strings); full entries are kept as they are."""
    by_name = {entry.get("name", entry.get("id")): entry for entry in base}
    unknown = [name for name in names if isinstance(name, str) and name not in by_name]
    if unknown:
        raise ValueError(f"{path}: {what} {unknown} are not in the base config (it has {sorted(by_name)}).")
    return [by_name[name] if isinstance(name, str) else name for name in names]


def load_config(path: Path) -> dict[str, Any]:
    """Read a benchmark config and check the keys the grid needs (see the module docstring)."""
    config = yaml.safe_load(path.read_text())
    if "base" in config:  # another config's settings, referenced rather than copied
        base = load_config(path.parent / config.pop("base"))
        for key in ("methods", "envs"):
            if key in config:
                config[key] = _picked(base[key], config[key], key, path)
        if "shared" in config:  # key by key, so a variant states only what it changes
            shared = base.get("shared", {})
            policy_kwargs = {**shared.get("policy_kwargs", {}), **config["shared"].get("policy_kwargs", {})}
            config["shared"] = {**shared, **config["shared"], **({"policy_kwargs": policy_kwargs} if policy_kwargs else {})}
        config = {**base, **config}
    missing = {"name", "seeds", "budget", "eval", "envs", "methods"} - set(config)
    if missing:
        raise ValueError(f"{path}: missing top-level keys {sorted(missing)}.")
    _refuse_unknown(config, TOP_KEYS, "the config", path)
    for env in config["envs"]:
        _refuse_unknown(env, ENV_KEYS, f"env {env_name(env)!r}" if "id" in env else "an env (it needs an id)", path)
        if "id" not in env:
            raise ValueError(f"{path}: env {env} needs an id (a Gymnasium environment id).")
    for method in config["methods"]:
        _refuse_unknown(method, RUN_KEYS, f"method {method.get('name')!r}", path)
        if not {"name", "algo", "policy"} <= set(method):
            raise ValueError(f"{path}: method {method.get('name')!r} needs name, algo, policy.")
    for name, level in config.get("pretrained", {}).items():
        if "model" in level:
            _check_given_level(name, level, path)
            continue
        _refuse_unknown(level, PRETRAINED_KEYS, f"pretrained {name!r}", path)
        if not {"env", "algo", "policy", "budget"} <= set(level):
            raise ValueError(f"{path}: pretrained {name!r} needs env, algo, policy, budget.")
    for key in ("eval", "diagnostics"):
        if key in config:
            _refuse_unknown(config[key], {"every", "episodes"}, key, path)
            for entry in ("every", "episodes"):
                positive_int(f"{path}: {key}.{entry}", config[key].get(entry))
    positive_int(f"{path}: budget", config["budget"])
    return config


def _check_given_level(name: str, level: dict[str, Any], path: Path) -> None:
    """A ``model:`` level: the file exists, is an SB3 model, and was trained for the ``budget`` it states."""
    _refuse_unknown(level, GIVEN_LEVEL_KEYS, f"pretrained {name!r} (a given model)", path)
    if set(level) != GIVEN_LEVEL_KEYS:
        raise ValueError(f"{path}: pretrained {name!r} gives a model, so it needs model, env and budget (its steps).")
    model = Path(level["model"])
    if not model.is_file():
        raise ValueError(f"{path}: pretrained {name!r}: no model at {model} (paths are relative to {Path.cwd()}).")
    try:
        steps = saved_num_timesteps(model)
    except ValueError as error:
        raise ValueError(f"{path}: pretrained {name!r}: {error}") from None
    if steps != positive_int(f"{path}: pretrained {name!r} budget", level["budget"]):
        raise ValueError(f"{path}: pretrained {name!r}: {model} was trained for {steps} steps, not budget {level['budget']}.")


def _refuse_unknown(entry: dict[str, Any], known: set[str], where: str, path: Path) -> None:
    """A key that is not a setting (a typo such as env_kwarg) is an error naming the closest valid one."""
    try:
        refuse_unknown_keys(entry, known, f"key in {where}")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def resolve_hyperparams(config: dict[str, Any], env: dict[str, Any], run: dict[str, Any], label: str) -> dict[str, Any]:
    """Merge shared -> env -> run hyperparameters; a run may not override a shared one (fair comparisons)."""
    shared = copy.deepcopy(config.get("shared", {}))
    own = {**run.get("hyperparams", {}), **({"policy_kwargs": run["policy_kwargs"]} if "policy_kwargs" in run else {})}
    clashes = {key for key in own if key in shared and key != "policy_kwargs"}
    clashes |= {f"policy_kwargs.{key}" for key in own.get("policy_kwargs", {}) if key in shared.get("policy_kwargs", {})}
    if clashes:
        raise ValueError(f"{label} overrides shared hyperparameters {sorted(clashes)}: compared runs must share them.")
    merged = {**shared, **env.get("hyperparams", {}), **own}
    merged["policy_kwargs"] = {
        **shared.get("policy_kwargs", {}),
        **env.get("hyperparams", {}).get("policy_kwargs", {}),
        **own.get("policy_kwargs", {}),
    }
    return merged


def levels_named(run: dict[str, Any]) -> list[str]:
    """The pretrained levels a method, level or spec names directly: its ``hierarchy`` levels, then ``init_from``."""
    return [level["level"] for level in run.get("hierarchy", [])] + ([run["init_from"]] if run.get("init_from") else [])


def levels_used(config: dict[str, Any], run: dict[str, Any]) -> set[str]:
    """The pretrained levels a method, level or spec builds on, recursively."""
    names = set(levels_named(run))
    return names.union(*(levels_used(config, config["pretrained"][name]) for name in names))


def pretrained_folder(name: str, seed: int) -> Path:
    """Where the pretrained level ``name`` of ``seed`` lives, relative to the output folder."""
    return Path("pretrained") / slug(name) / f"seed_{seed}"


def trained_levels(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pretrained levels the harness trains (per seed), in config order: every one without ``model``."""
    return {name: level for name, level in config.get("pretrained", {}).items() if "model" not in level}


def level_model(spec: dict[str, Any], name: str, output: Path) -> Path:
    """The ``model.zip`` of the pretrained level ``name`` that the run ``spec`` builds on."""
    given = spec.get("given_levels", {}).get(name)
    return Path(given["model"]) if given else output / pretrained_folder(name, spec["seed"]) / "model.zip"


def make_spec(config: dict[str, Any], run: dict[str, Any], env: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
    """One fully resolved run: everything train_run needs, nothing implicit."""
    for name in levels_named(run):
        if name not in config.get("pretrained", {}):
            raise ValueError(f"{label} uses the pretrained level {name!r}, which the config's 'pretrained:' lacks.")
    return {
        "label": label,
        "algo": run["algo"],
        "policy": run["policy"],
        "env_id": env["id"],
        "env_kwargs": env.get("env_kwargs", {}),
        "env_wrapper": run.get("env_wrapper", []),
        "hierarchy": run.get("hierarchy", []),
        "init_from": run.get("init_from"),
        "seed": seed,
        "budget": int(run.get("budget", config["budget"])),
        "eval_every": int(config["eval"]["every"]),
        "eval_episodes": int(config["eval"]["episodes"]),
        "hyperparams": resolve_hyperparams(config, env, run, label),
        **_given_levels(config, run),
        # Only when asked for, so that the specs (and digests) of runs without it stay as they were.
        **({"diagnostics": config["diagnostics"]} if "diagnostics" in config else {}),
    }


def _given_levels(config: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """``{"given_levels": {name: {model, sha256}}}`` for the ``model:`` levels a run builds on (else nothing,
    so the specs and digests of other runs stay as they were); a changed file is a changed run."""
    pretrained = config.get("pretrained", {})
    given = {
        name: {"model": model, "sha256": hashlib.sha256(Path(model).read_bytes()).hexdigest()}
        for name in sorted(levels_used(config, run))
        if (model := pretrained[name].get("model"))
    }
    return {"given_levels": given} if given else {}


def pretrained_specs(config: dict[str, Any]) -> list[list[tuple[Path, dict[str, Any]]]]:
    """For each pretrained level, in config order (a level may stack on earlier ones): (folder, spec) per seed."""
    phases = []
    for name, level in trained_levels(config).items():
        env = {"id": level["env"], "env_kwargs": level.get("env_kwargs", {})}
        phases.append(
            [
                (pretrained_folder(name, seed), make_spec(config, level, env, seed, f"pretrained {name} | seed {seed}"))
                for seed in config["seeds"]
            ]
        )
    return phases


def env_name(env: dict[str, Any]) -> str:
    """An env entry's name in the grid: its ``name``, else its ``id``."""
    return env.get("name", env["id"])


def grid_specs(config: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """The (method, env, seed) grid, seed-major so that methods run side by side; folders are relative to the output folder."""
    specs = []
    for seed in config["seeds"]:
        for env in config["envs"]:
            name = env_name(env)
            for method in config["methods"]:
                spec = make_spec(config, method, env, seed, f"{method['name']} | {name} | seed {seed}")
                spec.update(method=method["name"], env=name)
                specs.append((Path("runs") / slug(method["name"]) / slug(name) / f"seed_{seed}", spec))
    if len({folder for folder, _ in specs}) != len(specs):
        raise ValueError("Two methods or two envs share a folder name: give them names that differ in letters or digits.")
    return specs


# ---------------------------------------------------------------------------------------------
# Environments
# ---------------------------------------------------------------------------------------------


def make_env(spec: dict[str, Any], level_models: dict[str, Path], seed: int, monitor_dir: Path | None) -> VecEnv:
    """
    The run's environment: raw env -> Monitor -> frozen hierarchy levels (lowest first) -> env_wrapper.

    :param spec: The run spec.
    :param level_models: The ``model.zip`` of each pretrained level the run builds on, by name.
    :param seed: Seed of the environment.
    :param monitor_dir: Where Monitor writes its training CSV (None: nowhere).
    """
    levels = [(level_models[level["level"]], level.get("wrapper", {})) for level in spec["hierarchy"]]
    extra_wrapper = get_wrapper_class({"env_wrapper": spec["env_wrapper"]}) if spec["env_wrapper"] else None

    def wrap(env: gym.Env) -> gym.Env:
        for lower, settings in levels:
            env = sb3_lsp.LatentActionWrapper(env, str(lower), **settings)
        return extra_wrapper(env) if extra_wrapper is not None else env

    return make_vec_env(
        spec["env_id"],
        n_envs=1,
        seed=seed,
        env_kwargs=spec["env_kwargs"],
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        wrapper_class=wrap,
    )


# ---------------------------------------------------------------------------------------------
# Evaluation: deterministic episodes every `every` steps, one CSV row each
# ---------------------------------------------------------------------------------------------

EVAL_COLUMNS = ["step", "mean_return", "std_return", "success_rate", "final_distance", "episodes", "time_s"]


class PeriodicEvaluation(BaseCallback):
    """
    Every ``every`` steps, run ``episodes`` deterministic episodes on ``eval_env`` and append a
    row to ``csv_path``. Returns come from Monitor (the raw environment's reward); success rate
    and final distance from the last ``info`` of each episode, when the environment reports them.
    Each evaluation also prints one line (``label``, step, mean return): the run's progress, which
    Ray forwards to the harness's console.
    """

    def __init__(self, eval_env: VecEnv, every: int, episodes: int, csv_path: Path, label: str = "") -> None:
        super().__init__()
        self.eval_env, self.every, self.episodes, self.csv_path = eval_env, every, episodes, csv_path
        self.label = label
        self.start = time.perf_counter()
        self.last_step = -1
        with csv_path.open("w", newline="") as file:
            csv.writer(file).writerow(EVAL_COLUMNS)

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.evaluate()
        return True

    def evaluate(self) -> None:
        final_infos: list[dict[str, Any]] = []

        def remember_final_info(local_vars: dict[str, Any], _: dict[str, Any]) -> None:
            if local_vars["done"]:
                final_infos.append(local_vars["info"])

        returns, _ = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.episodes,
            deterministic=True,
            return_episode_rewards=True,
            callback=remember_final_info,
        )

        def mean_of(key: str) -> float | str:
            values = [float(info[key]) for info in final_infos if key in info]
            return float(np.mean(values)) if values else ""

        row = [
            self.num_timesteps,
            float(np.mean(returns)),
            float(np.std(returns)),
            mean_of("is_success"),
            mean_of("distance_to_goal"),
            len(returns),
            round(time.perf_counter() - self.start, 2),
        ]
        with self.csv_path.open("a", newline="") as file:
            csv.writer(file).writerow(row)
        self.last_step = self.num_timesteps
        print(f"{self.label}: step {self.num_timesteps}, return {row[1]:.1f} ± {row[2]:.1f}", flush=True)


# ---------------------------------------------------------------------------------------------
# One run (in its own worker process)
# ---------------------------------------------------------------------------------------------


def load_widened(model: BaseAlgorithm, pretrained_zip: Path) -> None:
    """
    Initialise ``model``'s policy (actor, critics, target critics) from a pretrained one, for fine-tuning.

    Where the new observation has extra entries appended (the maze's x, y after the
    proprioception the pretrained level saw), the first layers reading it get zero weights for
    them: the fine-tuned policy starts as exactly the pretrained one and learns to use them.
    """
    _, params, _ = load_from_zip_file(pretrained_zip, device="cpu")
    assert params is not None
    new_obs_dim = model.observation_space.shape[0]
    target = model.policy.state_dict()
    for key, old in params["policy"].items():
        new = target[key]
        if isinstance(old, th.Tensor) and old.shape != new.shape:  # not the actor's flow settings
            extra = new.shape[-1] - old.shape[-1]
            if old.dim() != 2 or old.shape[0] != new.shape[0] or extra <= 0:
                raise ValueError(f"Cannot initialise {key} of shape {tuple(new.shape)} from shape {tuple(old.shape)}.")
            old_obs_dim = new_obs_dim - extra  # inputs are [obs, (actions)]: new obs entries go after the old ones
            old = th.cat([old[:, :old_obs_dim], th.zeros(old.shape[0], extra), old[:, old_obs_dim:]], dim=1)
        target[key] = old
    model.policy.load_state_dict(target)


def make_model(spec: dict[str, Any], level_models: dict[str, Path], monitor_dir: Path | None) -> BaseAlgorithm:
    """The run's untrained model on its training environment (initialised from ``init_from`` if given)."""
    env = make_env(spec, level_models, spec["seed"], monitor_dir)
    model = ALGOS[spec["algo"]](spec["policy"], env, seed=spec["seed"], device="cpu", verbose=0, **spec["hyperparams"])
    if spec["init_from"] is not None:
        load_widened(model, level_models[spec["init_from"]])
    return model


def train_run(spec: dict[str, Any], level_files: dict[str, bytes], workers: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """
    Train one run in a temporary folder and return its files. Runs as a Ray task, on any machine.

    :param spec: The resolved run spec (see :func:`make_spec`).
    :param level_files: The ``model.zip`` bytes of each pretrained level the run builds on, by name.
    :param workers: Number of runs in parallel (recorded with the timing).
    :return: The content of ``run.json``, and every file of the run folder (path relative to it: bytes).
    """
    th.set_num_threads(1)  # one process per run and per core: intra-op threads would oversubscribe
    with tempfile.TemporaryDirectory(prefix="sb3_lsp_run_") as scratch:
        folder, level_models = Path(scratch) / "run", {}
        folder.mkdir()
        for name, content in level_files.items():
            level_models[name] = Path(scratch) / f"level_{slug(name)}.zip"
            level_models[name].write_bytes(content)
        record = _train_into(spec, folder, level_models, workers)
        return record, {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def _train_into(spec: dict[str, Any], folder: Path, level_models: dict[str, Path], workers: int) -> dict[str, Any]:
    """Train the run ``spec`` into ``folder`` (model, evaluations, Monitor CSV, run.json); return run.json's content."""
    model = make_model(spec, level_models, monitor_dir=folder)
    eval_env = make_env(spec, level_models, spec["seed"] + 10_000, monitor_dir=None)
    evaluation = PeriodicEvaluation(
        eval_env, spec["eval_every"], spec["eval_episodes"], folder / "evaluations.csv", label=spec["label"]
    )
    callbacks: list[BaseCallback] = [evaluation]
    if "diagnostics" in spec:
        diagnostics_env = make_env(spec, level_models, spec["seed"] + 20_000, monitor_dir=None)
        every, episodes = int(spec["diagnostics"]["every"]), int(spec["diagnostics"]["episodes"])
        callbacks.append(SACDiagnostics(diagnostics_env, every, episodes, folder / "diagnostics.csv"))
    start = time.perf_counter()
    model.learn(spec["budget"], callback=callbacks)
    if evaluation.last_step != model.num_timesteps:  # budget not a multiple of eval_every
        evaluation.evaluate()
    wall_s = time.perf_counter() - start
    model.save(folder / "model.zip")

    record = {
        "label": spec["label"],
        "steps": model.num_timesteps,
        "wall_s": round(wall_s, 1),
        "steps_per_s": round(model.num_timesteps / wall_s, 1),  # evaluation included
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


def select(config: dict[str, Any], envs: list[str] | None, seeds: list[int] | None) -> dict[str, Any]:
    """The config restricted to some of its env names and seeds (a part of the grid; specs are unchanged)."""
    env_names = [env_name(env) for env in config["envs"]]
    for name in envs or []:
        if name not in env_names:
            raise SystemExit(f"--envs {name!r} is not in the config; its envs are: {', '.join(env_names)}.")
    for seed in seeds or []:
        if seed not in config["seeds"]:
            raise SystemExit(f"--seeds {seed} is not in the config; its seeds are: {config['seeds']}.")
    return config | {
        "envs": [env for env, name in zip(config["envs"], env_names, strict=True) if envs is None or name in envs],
        "seeds": [seed for seed in config["seeds"] if seeds is None or seed in seeds],
    }


def run_status(folder: Path, spec: dict[str, Any], recorded: bool = False) -> str:
    """
    'done', 'interrupted', 'recorded' or 'pending'; a done run whose spec changed is an error, not silently reused.

    :param recorded: whether the results record (``results/<name>/runs.csv``) holds this run with this
        spec; such a run is 'recorded' (nothing to train) unless the output folder has it
    """
    if (folder / "done").is_file():
        if yaml.safe_load((folder / "spec.yml").read_text()) != spec:
            raise ValueError(
                f"{folder} was finished with a different spec than the config now gives. "
                "Use another --output, or delete the folder to rerun it."
            )
        return "done"
    if folder.exists():
        return "interrupted"
    return "recorded" if recorded else "pending"


def skippable_recorded(config: dict[str, Any], output: Path, recorded: set[Path]) -> set[Path]:
    """
    The recorded runs that need no training in ``output``: every recorded grid run, and every
    recorded pretrained level that no grid run still to train builds on (those need its model).
    """
    needed = {
        pretrained_folder(name, spec["seed"])
        for folder, spec in grid_specs(config)
        if run_status(output / folder, spec, folder in recorded) in ("pending", "interrupted")
        for name in levels_used(config, spec)
    }
    return recorded - needed


def commands_in(path: Path) -> list[str]:
    """The commands listed in ``path`` (a ``command.txt`` / ``commands.txt``, one per line); none if it does not exist."""
    return path.read_text().splitlines() if path.is_file() else []


def record_command(output: Path, command: str) -> None:
    """Add ``command`` to ``output/command.txt`` (once), which RESULTS.md lists as the commands that made the runs."""
    commands = commands_in(output / "command.txt")
    if command not in commands:
        (output / "command.txt").write_text("\n".join([*commands, command]) + "\n")


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
    pending = {}
    for folder, spec in todo:
        levels = {name: level_model(spec, name, output).read_bytes() for name in levels_named(spec)}
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
    args = parser.parse_args(argv)
    if args.address is not None and args.workers is not None:
        parser.error("--workers sizes a local Ray instance; with --address the cluster's CPUs set the parallel runs")

    config = load_config(args.config)
    output = args.output or Path("runs/benchmarks") / slug(config["name"])
    part = select(config, args.envs, args.seeds)
    phases = [*pretrained_specs(part), grid_specs(part)]
    check_envs(run for phase in phases for run in phase)
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
