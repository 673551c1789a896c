"""
RL Zoo (rl_zoo3) and Optuna integration.

``python -m sb3_lsp.zoo COMMAND [FLAGS]`` runs rl_zoo3's ``train``, ``enjoy``, ``record_video``,
``plot_train``, ``plot_from_file`` or ``all_plots`` with the plugin installed first; FLAGS are
rl_zoo3's own, unchanged. Inside ``python -m rl_zoo3.train``, ``--gym-packages sb3_lsp.zoo.plugin``
installs it (``--gym-packages sb3_lsp`` alone registers the policies and environments: enough to
train, not to tune). Nothing is installed by importing ``sb3_lsp`` or this package:
:func:`register` is the one hook, and it uses rl_zoo3's own extension points:

- ``HYPERPARAMS_SAMPLER["sac"]`` and ``["tqc"]``: SAC's (TQC's) stock search space plus the
  plugin's (:mod:`sb3_lsp.zoo.samplers`: the flow's, and a higher level's LatentActionWrapper's);
- ``rl_zoo3.train.ExperimentManager``: :class:`~sb3_lsp.zoo.experiment.LSPExperimentManager`.

Modules: :mod:`~sb3_lsp.zoo.samplers` (the search space), :mod:`~sb3_lsp.zoo.experiment` (the
experiment manager), :mod:`~sb3_lsp.zoo.storage` (journal and database storages),
:mod:`~sb3_lsp.zoo.callbacks` (evaluation, diagnostics and fine-tuning for a YAML entry's ``callback``),
:mod:`~sb3_lsp.zoo.layerwise` (``python -m sb3_lsp.hierarchy train``: a hierarchy's levels as RL
Zoo runs, one on top of the other).
"""

import sys

import rl_zoo3.train
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

from sb3_lsp.zoo.experiment import LSPExperimentManager, check_zoo_settings
from sb3_lsp.zoo.samplers import (
    FLOW_PARAMS,
    WRAPPER_PARAMS,
    flow_kwargs,
    lsp_hyperparams,
    sample_flow_params,
    sample_lsp_params,
    sample_sac_lsp_params,
    sample_tqc_lsp_params,
    sample_wrapper_params,
)
from sb3_lsp.zoo.storage import fail_dead_local_trials, make_storage


def register() -> None:
    """Install the plugin in this process's rl_zoo3 (see the module docstring); idempotent."""
    HYPERPARAMS_SAMPLER.update(sac=sample_sac_lsp_params, tqc=sample_tqc_lsp_params)
    rl_zoo3.train.ExperimentManager = LSPExperimentManager
    # `python -m rl_zoo3.train` runs that module as __main__, a second module object whose train()
    # looks ExperimentManager up in its own globals, bound before --gym-packages imports the plugin
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "rl_zoo3.train":
        main.ExperimentManager = LSPExperimentManager


__all__ = [
    "FLOW_PARAMS",
    "WRAPPER_PARAMS",
    "LSPExperimentManager",
    "check_zoo_settings",
    "fail_dead_local_trials",
    "flow_kwargs",
    "lsp_hyperparams",
    "make_storage",
    "register",
    "sample_flow_params",
    "sample_lsp_params",
    "sample_sac_lsp_params",
    "sample_tqc_lsp_params",
    "sample_wrapper_params",
]
