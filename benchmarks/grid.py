"""
A benchmark grid as data: read a config (see :mod:`benchmarks.run` for its keys), resolve it into
run specs, and tell which runs are done, interrupted, recorded or pending.

Plain dicts and paths, no Ray and no rl_zoo3 (torch comes in with ``sb3_lsp``, whose checks and
saved-model reader it uses), so that the harness (:mod:`benchmarks.run`) and the report
(:mod:`benchmarks.aggregate`) both read grids through it without importing each other.
"""

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_sb3 import EnvironmentName  # rl_zoo3's name of an environment's files

from sb3_lsp.checks import positive_int, refuse_unknown_keys
from sb3_lsp.hierarchy.levels import saved_num_timesteps
from sb3_lsp.settings import with_zoo_entry

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


#: Keys of an RL Zoo hyperparameter entry that set up the run (rl_zoo3's ExperimentManager takes them
#: out before it builds the model), not the model: a grid sets these per method, env and budget.
ZOO_RUN_KEYS = frozenset({"n_timesteps", "policy", "n_envs", "normalize", "env_kwargs", "env_wrapper", "vec_env_wrapper"})
ZOO_RUN_KEYS |= {"frame_stack", "callback", "monitor_kwargs"}


def load_config(path: Path) -> dict[str, Any]:
    """Read a benchmark config and check the keys the grid needs (see :mod:`benchmarks.run` for them)."""
    config = yaml.safe_load(path.read_text())
    if "shared" in config:
        config["shared"] = with_zoo_entry(config["shared"], f"{path}: shared", without=ZOO_RUN_KEYS)
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
    """The model ``.zip`` of the pretrained level ``name`` that the run ``spec`` builds on."""
    given = spec.get("given_levels", {}).get(name)
    return Path(given["model"]) if given else run_model(output / pretrained_folder(name, spec["seed"]))


def run_model(folder: Path) -> Path:
    """The model of a finished run folder: the RL Zoo's ``<env>.zip``, or ``model.zip`` (the harness's
    runs before they were RL Zoo runs)."""
    legacy = folder / "model.zip"
    if legacy.is_file():
        return legacy
    return folder / f"{EnvironmentName(yaml.safe_load((folder / 'spec.yml').read_text())['env_id'])}.zip"


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


def spec_digest(spec: dict[str, Any]) -> str:
    """A short fingerprint of a resolved run spec: recorded runs count only while it is unchanged."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Status of a run: done, interrupted, recorded or pending
# ---------------------------------------------------------------------------------------------


def select(
    config: dict[str, Any], envs: list[str] | None, seeds: list[int] | None, methods: list[str] | None = None
) -> dict[str, Any]:
    """The config restricted to some of its env names, seeds and method names (a part of the grid; specs are unchanged)."""
    env_names = [env_name(env) for env in config["envs"]]
    method_names = [method["name"] for method in config["methods"]]
    for option, asked, known in (("--envs", envs, env_names), ("--methods", methods, method_names)):
        for name in asked or []:
            if name not in known:
                raise SystemExit(f"{option} {name!r} is not in the config; its {option[2:]} are: {', '.join(known)}.")
    for seed in seeds or []:
        if seed not in config["seeds"]:
            raise SystemExit(f"--seeds {seed} is not in the config; its seeds are: {config['seeds']}.")
    return config | {
        "envs": [env for env, name in zip(config["envs"], env_names, strict=True) if envs is None or name in envs],
        "seeds": [seed for seed in config["seeds"] if seeds is None or seed in seeds],
        "methods": [method for method in config["methods"] if methods is None or method["name"] in methods],
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
