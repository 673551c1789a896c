"""
The settings files shipped with the package: ``sb3_lsp/hyperparams/*.yml`` (``hyperparams/`` in a
checkout links there), so the commands that read them work from any directory.
"""

from pathlib import Path
from typing import Any

import yaml

#: The package's copy of the repository's ``hyperparams/`` folder.
HYPERPARAMS_DIR = Path(__file__).parent / "hyperparams"


def settings_file(path: str | Path) -> Path:
    """
    Find a settings file: ``path`` itself if it exists, else the shipped file it names.

    :param path: A path, or the name of a shipped file with or without the ``hyperparams/`` folder
        (``hierarchy_point_maze.yml``, ``hyperparams/hierarchy_point_maze.yml``).
    :return: The file to read.
    :raises FileNotFoundError: Naming the shipped files, when neither exists.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.parent in (Path(), Path("hyperparams")) and (HYPERPARAMS_DIR / path.name).is_file():
        return HYPERPARAMS_DIR / path.name
    shipped = ", ".join(sorted(file.name for file in HYPERPARAMS_DIR.glob("*.yml")))
    raise FileNotFoundError(f"No settings file at {path} (from {Path.cwd()}), and no shipped file of that name: {shipped}.")


def with_zoo_entry(settings: dict[str, Any], where: str, without: frozenset[str] = frozenset()) -> dict[str, Any]:
    """
    Resolve a reference to an RL Zoo hyperparameter entry: ``settings`` with a ``zoo: {file, env}`` key
    become the entry ``env`` of ``file`` (a shipped ``hyperparams/`` file, or a path), with the other
    keys of ``settings`` on top (``policy_kwargs`` merged key by key), so that a setting lives in one
    YAML and is referenced rather than copied. Settings without ``zoo`` are returned unchanged.

    :param settings: Hyperparameters, possibly with a ``zoo`` key.
    :param where: Names the settings in error messages.
    :param without: Keys of the entry to leave out (those the caller sets otherwise).
    :return: The resolved hyperparameters.
    """
    if "zoo" not in settings:
        return settings
    settings = dict(settings)
    reference = settings.pop("zoo")
    if not isinstance(reference, dict) or set(reference) != {"file", "env"}:
        raise ValueError(f"{where}: zoo must be {{file: <hyperparams file>, env: <its entry>}}, got {reference!r}.")
    file = settings_file(reference["file"])
    entries = yaml.safe_load(file.read_text())
    if reference["env"] not in entries:
        raise ValueError(f"{where}: {file} has no entry {reference['env']!r}; its entries: {sorted(entries)}.")
    entry = {key: value for key, value in entries[reference["env"]].items() if key not in without}
    if isinstance(entry.get("policy_kwargs"), str) or isinstance(settings.get("policy_kwargs"), str):
        raise ValueError(
            f"{where}: policy_kwargs must be a mapping to be merged with {file}'s entry {reference['env']!r}, "
            "not the Python expression string the RL Zoo also accepts."
        )
    policy_kwargs = {**entry.get("policy_kwargs", {}), **settings.get("policy_kwargs", {})}
    return {**entry, **settings, **({"policy_kwargs": policy_kwargs} if policy_kwargs else {})}
