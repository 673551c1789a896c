"""
Layerwise training of a hierarchy (paper, algorithm 1) with plain RL Zoo runs.

    python -m sb3_lsp.hierarchy train CONFIG.yml [--output DIR] [--seed N] [-- EXTRA RL ZOO FLAGS]

CONFIG lists the levels, lowest first. Each level names its environment (and so its reward),
its algorithm and one RL Zoo hyperparameter entry (the keys of ``hyperparams/sac_lsp.yml``);
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
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from huggingface_sb3 import EnvironmentName

from sb3_lsp.hierarchy.policy import HierarchicalPolicy

WRAPPER_CLASS = "sb3_lsp.LatentActionWrapper"


def _validated_levels(config: Any, path: Path) -> list[dict[str, Any]]:
    levels = config.get("levels") if isinstance(config, dict) else None
    if not isinstance(levels, list) or not levels:
        raise ValueError(f"{path}: expected a non-empty 'levels:' list (lowest level first).")
    for index, level in enumerate(levels):
        missing = {"env", "hyperparams"} - set(level)
        if missing:
            raise ValueError(f"{path}: level {index} lacks {sorted(missing)} (each level needs env, hyperparams).")
        if index == 0 and "wrapper" in level:
            raise ValueError(f"{path}: level 0 acts on the raw environment and takes no 'wrapper:' settings.")
    return levels


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
    """The run folder rl_zoo3.train just wrote: logs/<algo>/<env>_<highest id>/."""
    env_name = EnvironmentName(env_id)
    runs = [p for p in (log_folder / algo).glob(f"{env_name}_*") if p.name.rsplit("_", 1)[-1].isdigit()]
    if not runs:
        raise FileNotFoundError(f"rl_zoo3.train wrote no run folder for {env_id} under {log_folder / algo}.")
    return max(runs, key=lambda p: int(p.name.rsplit("_", 1)[-1]))


def load_config(config_path: Path) -> dict[str, Any]:
    """Read and check a hierarchy config (see the module docstring)."""
    if not config_path.is_file():
        raise FileNotFoundError(f"No hierarchy config at {config_path}.")
    config = yaml.safe_load(config_path.read_text())
    _validated_levels(config, config_path)
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
        "--gym-packages", "sb3_lsp",
        "--seed", str(seed),
        *zoo_args,
    ]  # fmt: skip
    print(f"[sb3_lsp] {label}: {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    return latest_run_folder(log_folder, algo, env_id)


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
        run_folders.append(
            train_zoo_run(
                level["env"],
                level.get("algo", "sac"),
                zoo_hyperparams(levels, index, run_folders),
                output / f"level_{index}",
                seed + index,
                zoo_args,
                label=f"level {index}/{len(levels) - 1}",
            )
        )

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
    except subprocess.CalledProcessError as error:
        parser.exit(error.returncode, f"python -m sb3_lsp.hierarchy: error: rl_zoo3.train failed: {error}\n")


if __name__ == "__main__":
    main()
