"""
The settings files shipped with the package: ``sb3_lsp/hyperparams/*.yml`` (``hyperparams/`` in a
checkout links there), so the commands that read them work from any directory.
"""

from pathlib import Path

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
