"""
Layerwise training of a hierarchy (paper, algorithm 1) with plain RL Zoo runs.

    python -m sb3_lsp.hierarchy train CONFIG.yml [--output DIR] [--seed N] [-- EXTRA RL ZOO FLAGS]

CONFIG lists the levels, lowest first. Each level names its environment (and so its reward),
its algorithm and one RL Zoo hyperparameter entry (the keys of ``hyperparams/sac_lsp.yml``; or
``zoo: {file: sac_lsp.yml, env: ENV_ID}``, that file's entry, plus the keys that differ from it);
every level above 0 also gives the :class:`LatentActionWrapper` settings that embed the level
below it. Level ``i`` is trained with ``python -m rl_zoo3.train`` on its environment wrapped,
through the YAML ``env_wrapper`` list, in the frozen run folders of levels ``0 .. i-1``. Each
level is a normal RL Zoo run folder (``DIR/level_<i>/<algo>/<env>_<id>/``: enjoy, plots and
record_video work on it); the composed :class:`HierarchicalPolicy` is saved as
``DIR/hierarchy.zip``. Example (``hyperparams/hierarchy_point_maze.yml``)::

    output: runs/point_maze
    seed: 0
    levels:
      - env: sb3_lsp/PointAnyDirection-v0      # level 0: shaping reward
        algo: sac
        hyperparams: {policy: LSPPolicy, n_timesteps: 10000, learning_rate: 1.0e-3}
      - env: sb3_lsp/PointCrossMaze-v0         # level 1: the task, in level 0's latent space
        algo: sac
        wrapper: {action_repeat: 3, action_prior: gaussian, lower_obs: 2}
        hyperparams: {policy: LSPPolicy, n_timesteps: 20000}
"""

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from huggingface_sb3 import EnvironmentName
from rl_zoo3.utils import get_latest_run_id
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_lsp.checks import finite_number, positive_int, refuse_unknown_keys
from sb3_lsp.hierarchy.levels import find_zoo_run_files, saved_num_timesteps
from sb3_lsp.hierarchy.policy import HierarchicalPolicy
from sb3_lsp.hierarchy.wrapper import LatentActionWrapper
from sb3_lsp.settings import settings_file, with_zoo_entry

WRAPPER_CLASS = "sb3_lsp.LatentActionWrapper"
CONFIG_KEYS = {"output", "seed", "levels", "baseline"}
LEVEL_KEYS = {"env", "algo", "wrapper", "hyperparams"}
WRAPPER_KEYS = {"latent_bound", "action_repeat", "action_prior", "prior_coef", "lower_obs"}
#: Written into a level's folder when its run finished with its full budget (what a rerun reuses).
FINISHED_FILE = "finished.json"


def _validated_levels(config: Any, path: Path) -> list[dict[str, Any]]:
    """Check the config's keys and values (every level's) before anything trains."""
    levels = config.get("levels") if isinstance(config, dict) else None
    if not isinstance(levels, list) or not levels:
        raise ValueError(f"{path}: expected a non-empty 'levels:' list (lowest level first).")
    refuse_unknown_keys(config, CONFIG_KEYS, f"key in {path}")
    for index, level in enumerate(levels):
        where = f"{path}, level {index}"
        if not isinstance(level, dict):
            raise ValueError(f"{where}: expected a mapping with env, algo, hyperparams (and wrapper above level 0).")
        refuse_unknown_keys(level, LEVEL_KEYS, f"key in {where}")
        missing = {"env", "hyperparams"} - set(level)
        if missing:
            raise ValueError(f"{where} lacks {sorted(missing)} (each level needs env, hyperparams).")
        if index == 0 and "wrapper" in level:
            raise ValueError(f"{path}: level 0 acts on the raw environment and takes no 'wrapper:' settings.")
        hyperparams = level["hyperparams"]
        if not isinstance(hyperparams, dict) or "n_timesteps" not in hyperparams:
            raise ValueError(f"{where}: hyperparams needs n_timesteps (the level's budget).")
        hyperparams["n_timesteps"] = positive_int(f"{where}: n_timesteps", _number(hyperparams["n_timesteps"]))
        wrapper = level.get("wrapper", {})
        refuse_unknown_keys(wrapper, WRAPPER_KEYS, f"key in {where}, wrapper")
        for name in ("latent_bound", "prior_coef"):
            if name in wrapper:
                wrapper[name] = finite_number(f"{where}: {name}", wrapper[name], positive=name == "latent_bound",
                                              non_negative=name == "prior_coef")  # fmt: skip
        if "action_repeat" in wrapper:
            wrapper["action_repeat"] = positive_int(f"{where}: action_repeat", wrapper["action_repeat"])
    return levels


def _number(value: Any) -> Any:
    """Integral floats (YAML's 1.0e4) as ints; everything else unchanged, for the checks to name."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def check_levels_build(levels: list[dict[str, Any]]) -> None:
    """
    Build every level's environment and wrapper stack once, on untrained stand-ins for the levels
    below, so a mistake in level 2 (a wrong lower_obs, a policy that is not a flow) fails in
    seconds instead of after levels 0 and 1 have trained.
    """
    from rl_zoo3 import ALGOS

    stand_ins: list[Any] = []
    for index, level in enumerate(levels):
        hyperparams = level["hyperparams"]
        algo = level.get("algo", "sac")
        if algo not in ALGOS:
            raise ValueError(f"level {index}: unknown algo {algo!r} (the RL Zoo's: {sorted(ALGOS)}).")
        try:
            env = gym.make(level["env"], **hyperparams.get("env_kwargs", {}))
            for below in range(index):
                env = LatentActionWrapper(env, stand_ins[below], **levels[below + 1].get("wrapper", {}))
            policy_kwargs = hyperparams.get("policy_kwargs", {})
            if isinstance(policy_kwargs, str):  # the RL Zoo also takes it as a Python expression
                policy_kwargs = eval(policy_kwargs)
            policy = hyperparams.get("policy", "MlpPolicy")
            small = {"buffer_size": 1} if issubclass(ALGOS[algo], OffPolicyAlgorithm) else {}  # built, never trained
            stand_ins.append(ALGOS[algo](policy, env, policy_kwargs=policy_kwargs, device="cpu", **small))
        except (ValueError, TypeError, gym.error.Error) as error:
            raise ValueError(f"level {index} ({level['env']}): {error}") from error


def _digest(entry: dict[str, Any], env_id: str, algo: str, seed: int) -> str:
    text = json.dumps({"env": env_id, "algo": algo, "seed": seed, "hyperparams": entry}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained_steps(run_folder: Path) -> int:
    """``num_timesteps`` of the model a run folder holds."""
    model_zip, _ = find_zoo_run_files(run_folder)
    return saved_num_timesteps(model_zip)


class IncompleteLevelError(RuntimeError):
    """A level's RL Zoo run ended before its budget."""


def zoo_hyperparams(levels: list[dict[str, Any]], index: int, run_folders: list[Path]) -> dict[str, Any]:
    """The RL Zoo YAML entry that trains level ``index`` on top of the frozen ``run_folders``."""
    level = levels[index]
    entry = dict(level["hyperparams"])
    wrappers = [
        {WRAPPER_CLASS: {"lower": str(run_folders[below].resolve()), **levels[below + 1].get("wrapper", {})}}
        for below in range(index)
    ]
    if wrappers:
        entry["env_wrapper"] = wrappers + list(entry.get("env_wrapper", []))
    return entry


def latest_run_folder(log_folder: Path, algo: str, env_id: str) -> Path:
    """The run folder rl_zoo3.train just wrote: logs/<algo>/<env>_<highest id>/ (rl_zoo3's own numbering)."""
    env_name = EnvironmentName(env_id)
    run_id = get_latest_run_id(str(log_folder / algo), env_name)
    if run_id == 0:
        raise FileNotFoundError(f"rl_zoo3.train wrote no run folder for {env_id} under {log_folder / algo}.")
    return log_folder / algo / f"{env_name}_{run_id}"


def load_config(config_path: Path) -> dict[str, Any]:
    """Read and check a hierarchy config (see the module docstring): a path, or a shipped file's name."""
    config_path = settings_file(config_path)
    config = yaml.safe_load(config_path.read_text())
    if isinstance(config, dict):  # each run's hyperparams may name an entry of hyperparams/ (zoo: {file, env})
        runs = [*enumerate(config.get("levels") or []), ("baseline", config.get("baseline"))]
        for name, run in runs:
            if isinstance(run, dict) and isinstance(run.get("hyperparams"), dict):
                where = f"{config_path}, {'level ' if name != 'baseline' else ''}{name}: hyperparams"
                run["hyperparams"] = with_zoo_entry(run["hyperparams"], where)
    _validated_levels(config, config_path)
    check_levels_build(config["levels"])
    return config


def train_zoo_run(
    env_id: str, algo: str, hyperparams: dict[str, Any], log_folder: Path, seed: int, zoo_args: list[str], label: str
) -> Path:
    """
    One ``python -m rl_zoo3.train`` run with the given YAML entry; return its run folder.

    :param env_id: Environment id.
    :param algo: RL Zoo algorithm name (``sac``, ``tqc``, ...).
    :param hyperparams: The YAML entry (RL Zoo conventions, ``env_wrapper`` included).
    :param log_folder: The run's ``-f`` folder; its YAML is written there as ``hyperparams.yml``.
    :param seed: The run's seed.
    :param zoo_args: Extra ``rl_zoo3.train`` flags.
    :param label: Name of the run in the progress messages.
    """
    log_folder.mkdir(parents=True, exist_ok=True)
    hyperparams_file = log_folder / "hyperparams.yml"
    hyperparams_file.write_text(yaml.safe_dump({env_id: hyperparams}, sort_keys=False))
    command = [
        sys.executable, "-m", "rl_zoo3.train",
        "--algo", algo,
        "--env", env_id,
        "-conf", str(hyperparams_file),
        "-f", str(log_folder),
        "--gym-packages", "sb3_lsp.zoo.plugin",
        "--seed", str(seed),
        *zoo_args,
    ]  # fmt: skip
    print(f"[sb3_lsp] {label}: {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    return latest_run_folder(log_folder, algo, env_id)


def zoo_budget(entry: dict[str, Any], zoo_args: list[str]) -> int:
    """The steps ``rl_zoo3.train`` runs for a level: its ``-n``/``--n-timesteps`` flag when given
    (it overrides the YAML's, as in rl_zoo3), else the entry's ``n_timesteps``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-n", "--n-timesteps", type=int, default=-1)
    given = parser.parse_known_args(zoo_args)[0].n_timesteps
    return given if given > 0 else entry["n_timesteps"]


def train(config: dict[str, Any], output: Path | None, seed: int | None, zoo_args: list[str]) -> tuple[Path, list[Path]]:
    """
    Train every level of ``config`` in turn.

    :param config: A hierarchy config, as returned by :func:`load_config`.
    :param output: Output folder (default: the config's ``output``, else ``runs/hierarchy``).
    :param seed: Level ``i`` trains with ``seed + i`` (default: the config's ``seed``, else 0).
    :param zoo_args: Extra flags for every ``rl_zoo3.train`` call.
    :return: The path of the composed HierarchicalPolicy and the run folder of each level.
    """
    levels = config["levels"]
    output = output or Path(config.get("output", "runs/hierarchy"))
    seed = seed if seed is not None else config.get("seed", 0)

    run_folders: list[Path] = []
    for index, level in enumerate(levels):
        label = f"level {index}/{len(levels) - 1}"
        algo, entry, level_seed = level.get("algo", "sac"), zoo_hyperparams(levels, index, run_folders), seed + index
        level_folder = output / f"level_{index}"
        budget = zoo_budget(entry, zoo_args)
        # the lower levels' run folders are in entry
        digest = _digest({**entry, "n_timesteps": budget}, level["env"], algo, level_seed)
        finished = level_folder / FINISHED_FILE
        if finished.is_file():
            record = json.loads(finished.read_text())
            run_folder = Path(record["run_folder"])
            if record["digest"] == digest and run_folder.is_dir() and trained_steps(run_folder) >= record["budget"]:
                print(f"[sb3_lsp] {label}: reusing {run_folder} (same settings, {record['budget']} steps done)", flush=True)
                run_folders.append(run_folder)
                continue
            print(f"[sb3_lsp] {label}: the run in {run_folder} has other settings or is incomplete: retraining", flush=True)
            finished.unlink()
        elif level_folder.is_dir():
            print(f"[sb3_lsp] {label}: an earlier run of this level did not finish: retraining it", flush=True)
        run_folder = train_zoo_run(level["env"], algo, entry, level_folder, level_seed, zoo_args, label=label)
        # rl_zoo3 saves the model and exits 0 when its training is interrupted (SIGINT): never build
        # the next level on a partial one.
        steps = trained_steps(run_folder)
        if steps < budget:
            raise IncompleteLevelError(
                f"{label} ({level['env']}) ended after {steps} of its {budget} steps ({run_folder}); the next level "
                "is not trained on a partial one. Rerun the same command to train it again."
            )
        finished.write_text(json.dumps({"digest": digest, "run_folder": str(run_folder), "budget": budget}))
        run_folders.append(run_folder)

    policy = HierarchicalPolicy.from_levels(run_folders, [level.get("wrapper", {}) for level in levels[1:]])
    policy_path = output / "hierarchy.zip"
    policy.save(policy_path)
    print(f"[sb3_lsp] levels: {', '.join(map(str, run_folders))}")
    print(f"[sb3_lsp] composed policy: {policy_path}")
    return policy_path, run_folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_lsp.hierarchy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train the levels of CONFIG in turn (algorithm 1); flags after -- go to every rl_zoo3.train"
    )
    train_parser.add_argument("config", type=Path, help="hierarchy YAML (see above)")
    train_parser.add_argument("--output", type=Path, default=None, help="overrides the config's output folder")
    train_parser.add_argument("--seed", type=int, default=None, help="level i uses seed + i (default: config's, else 0)")
    # Everything after a bare "--" goes to every rl_zoo3.train call unchanged.
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    zoo_args = argv[split + 1 :]
    try:
        train(load_config(args.config), args.output, args.seed, zoo_args)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"python -m sb3_lsp.hierarchy: error: {error}\n")
    except IncompleteLevelError as error:
        parser.exit(3, f"python -m sb3_lsp.hierarchy: error: {error}\n")
    except subprocess.CalledProcessError as error:
        parser.exit(error.returncode, f"python -m sb3_lsp.hierarchy: error: rl_zoo3.train failed: {error}\n")


if __name__ == "__main__":
    main()
