"""
The rl_zoo3 internals that sb3_lsp.zoo overrides or relies on, pinned: an rl_zoo3 upgrade that
changes their shape fails here, naming what changed, rather than breaking a user's study.
pyproject.toml pins rl-zoo3 to the range these tests pass on.
"""

import inspect
import subprocess
import sys

import pytest
import rl_zoo3.train
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, sample_sac_params, sample_tqc_params

from sb3_lsp.zoo.experiment import LSPExperimentManager

#: The methods LSPExperimentManager overrides, and those it calls, with their parameters.
METHODS = {
    "_preprocess_hyperparams": ["self", "hyperparams"],
    "read_hyperparameters": ["self"],
    "objective": ["self", "trial"],
    "hyperparameters_optimization": ["self"],
    "_create_sampler": ["self", "sampler_method"],
    "_create_pruner": ["self", "pruner_method"],
    "load_trial": ["self", "storage", "study_name", "trial_id", "convert"],
    "create_envs": ["self", "n_envs", "eval_env", "no_log"],
}
#: Attributes of an ExperimentManager the overrides read or set (set in rl_zoo3's __init__).
ATTRIBUTES = [
    "algo", "env_wrapper", "trial_id", "custom_hyperparams", "storage", "study_name", "max_total_trials",
    "n_jobs", "n_trials", "n_timesteps", "sampler", "pruner", "verbose", "tensorboard_log", "log_folder",
    "env_name", "no_optim_plots", "_hyperparams",
]  # fmt: skip


@pytest.mark.parametrize("name", list(METHODS))
def test_overridden_and_called_methods_keep_their_parameters(name: str) -> None:
    assert list(inspect.signature(getattr(ExperimentManager, name)).parameters) == METHODS[name], (
        f"rl_zoo3's ExperimentManager.{name} changed its parameters: review sb3_lsp/zoo/experiment.py"
    )


def test_the_attributes_the_overrides_use_are_set_by_rl_zoo3() -> None:
    source = inspect.getsource(ExperimentManager.__init__) + inspect.getsource(ExperimentManager.setup_experiment)
    missing = [name for name in ATTRIBUTES if f"self.{name} =" not in source and f"self.{name}:" not in source]
    assert not missing, f"rl_zoo3's ExperimentManager no longer sets {missing}: review sb3_lsp/zoo/experiment.py"


def test_a_learning_error_is_still_chained_into_the_prune() -> None:
    # LSPExperimentManager.objective tells a failed trial from a pruned one by the prune's __cause__
    source = inspect.getsource(ExperimentManager.objective)
    assert "except (AssertionError, ValueError) as e:" in source
    assert "raise optuna.exceptions.TrialPruned() from e" in source, "rl_zoo3 no longer chains the error into the prune"
    # ... and rl_zoo3's objective calls the registered sampler with these arguments, builds the
    # trial's envs after it (the sampler sets a higher level's wrappers) and passes what it returns to the model
    call = source.index("HYPERPARAMS_SAMPLER[self.algo](trial, self.n_actions, n_envs, additional_args)")
    assert call < source.index("self.create_envs(")


def test_samplers_and_converters_keep_their_signatures() -> None:
    for sampler in (sample_sac_params, sample_tqc_params):
        assert list(inspect.signature(sampler).parameters) == ["trial", "n_actions", "n_envs", "additional_args"]
    for algo in ("sac", "tqc"):
        assert list(inspect.signature(HYPERPARAMS_CONVERTER[algo]).parameters) == ["sampled_params"]


def test_train_looks_its_experiment_manager_up_at_call_time() -> None:
    # register() replaces rl_zoo3.train.ExperimentManager; train() must read the module global
    assert "ExperimentManager(" in inspect.getsource(rl_zoo3.train.train)
    assert issubclass(LSPExperimentManager, ExperimentManager)


def test_importing_sb3_lsp_installs_nothing_in_rl_zoo3_and_the_hook_does() -> None:
    """Whether rl_zoo3.exp_manager was imported first or not: only sb3_lsp.zoo.plugin (or register()) installs."""
    probe = (
        "import sys; {first}import sb3_lsp; import rl_zoo3.train, rl_zoo3.hyperparams_opt as h; "
        "before = (rl_zoo3.train.ExperimentManager.__name__, h.HYPERPARAMS_SAMPLER['sac'].__module__); "
        "import sb3_lsp.zoo.plugin; "
        "print(before, (rl_zoo3.train.ExperimentManager.__name__, h.HYPERPARAMS_SAMPLER['sac'].__module__))"
    )
    for first in ("", "import rl_zoo3.exp_manager; "):
        output = subprocess.run([sys.executable, "-c", probe.format(first=first)], capture_output=True, text=True, check=True)
        assert output.stdout.strip() == (
            "('ExperimentManager', 'rl_zoo3.hyperparams_opt') ('LSPExperimentManager', 'sb3_lsp.zoo.samplers')"
        ), output.stdout + output.stderr
