"""``python -m sb3_lsp.zoo COMMAND [FLAGS]``: an rl_zoo3 command, with the plugin installed first."""

import runpy
import sys

import rl_zoo3.train
from rl_zoo3.enjoy import enjoy
from rl_zoo3.plots import all_plots, plot_from_file, plot_train

from sb3_lsp import zoo


def _train() -> None:
    # train() looks its ExperimentManager up in its module at call time: zoo.register() set it
    rl_zoo3.train.train()


def _record_video() -> None:
    # rl_zoo3.record_video is a script without a function to call
    runpy.run_module("rl_zoo3.record_video", run_name="__main__")


COMMANDS = {
    "train": _train,
    "enjoy": enjoy,
    "record_video": _record_video,
    "plot_train": plot_train,
    "plot_from_file": plot_from_file,
    "all_plots": all_plots,
}


def main(argv: list[str]) -> None:
    """
    :param argv: ``COMMAND`` then rl_zoo3's flags for it.
    """
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"usage: python -m sb3_lsp.zoo {{{','.join(COMMANDS)}}} [rl_zoo3 flags, see COMMAND --help]")
    command, *flags = argv
    zoo.register()
    sys.argv = [f"python -m sb3_lsp.zoo {command}", *flags]
    COMMANDS[command]()


if __name__ == "__main__":
    main(sys.argv[1:])
