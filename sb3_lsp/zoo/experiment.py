"""
:class:`LSPExperimentManager`: rl_zoo3's ``ExperimentManager`` with the overrides tuning needs,
each naming the rl_zoo3 behaviour it changes; training is rl_zoo3's, unchanged.
"""

import copy
import inspect
import os
import pickle
import socket
import sys
import time
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pprint import pprint
from typing import Any

import optuna
from gymnasium import spaces
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, fail_stale_trials
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import plot_optimization_history, plot_param_importances
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER
from rl_zoo3.utils import get_wrapper_class
from stable_baselines3.common.callbacks import BaseCallback

from sb3_lsp.checks import finite_number, positive_int, refuse_unknown_keys
from sb3_lsp.hierarchy import LatentActionWrapper
from sb3_lsp.policies import FLOW_KWARG_NAMES, SAC_POLICY_ALIASES, TQC_POLICY_ALIASES, _resolve_flow_kwargs
from sb3_lsp.zoo.samplers import (
    FLOW_PARAMS,
    WRAPPER_PARAMS,
    current_entry,
    is_latent_space_policy,
    latent_wrapper_index,
    trial_hyperparams,
    wrapper_entry,
    wrapper_list,
)
from sb3_lsp.zoo.storage import fail_dead_local_trials, live_running_trials, make_storage

COUNTED_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)
#: A worker stops after this many failed trials in a row: that is a bug, not an unlucky sample.
MAX_CONSECUTIVE_FAILURES = 3
#: Environment variable with the heartbeat interval (seconds) of database storages.


class _ConsecutiveFailures:
    """Study callback: stop this worker after ``limit`` of its trials failed in a row."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @property
    def tripped(self) -> bool:
        return self.count >= self.limit

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.count = self.count + 1 if trial.state == TrialState.FAIL else 0
        if self.tripped:
            study.stop()


def check_zoo_settings(hyperparams: dict[str, Any], env_wrapper: Any, algo: str) -> None:
    """
    Refuse, naming the closest valid key, a misspelt ``policy_kwargs`` key of a latent-space policy
    and a misspelt :class:`~sb3_lsp.LatentActionWrapper` argument in ``env_wrapper``.

    :param hyperparams: The YAML entry after rl_zoo3's preprocessing (``policy_kwargs`` a dict).
    :param env_wrapper: The entry's ``env_wrapper`` as written in the YAML.
    :param algo: The RL Zoo algorithm name (``sac``, ``tqc``).
    """
    policy = hyperparams.get("policy")
    if policy is not None and is_latent_space_policy(policy):
        aliases = TQC_POLICY_ALIASES if algo == "tqc" else SAC_POLICY_ALIASES
        policy_class = aliases[policy] if isinstance(policy, str) else policy
        given = dict(hyperparams.get("policy_kwargs") or {})
        policy_class._refuse_unknown_arguments(given)
        # the values too; the action space is not known yet, and only the defaults depend on it
        _resolve_flow_kwargs(
            spaces.Box(-1.0, 1.0, (1,)), {key: given[key] for key in (*FLOW_KWARG_NAMES, "flow") if key in given}
        )
    index = latent_wrapper_index(env_wrapper)
    if index is not None:
        _, kwargs = wrapper_entry(wrapper_list(env_wrapper)[index])
        known = set(inspect.signature(LatentActionWrapper.__init__).parameters) - {"self", "env"}
        refuse_unknown_keys(kwargs, known, "sb3_lsp.LatentActionWrapper argument in env_wrapper")
        for name, check in (("latent_bound", dict(positive=True)), ("prior_coef", dict(non_negative=True))):
            if name in kwargs:
                finite_number(f"env_wrapper: LatentActionWrapper {name}", kwargs[name], **check)
        if "action_repeat" in kwargs:
            positive_int("env_wrapper: LatentActionWrapper action_repeat", kwargs["action_repeat"])


class LSPExperimentManager(ExperimentManager):
    """
    rl_zoo3's ``ExperimentManager``; everything it does for training is unchanged, but the YAML
    entry's flow and wrapper settings are checked before rl_zoo3 writes the run folder. For tuning:

    - the samplers see the YAML entry (:func:`~sb3_lsp.zoo.samplers.sample_lsp_params`);
    - a trial that raises ends FAIL with its traceback logged and stored in its ``traceback``
      user attribute (rl_zoo3 turns an ``AssertionError``/``ValueError`` raised while learning
      into a prune and prints one line), and the worker goes on with the next trial, up to
      :data:`MAX_CONSECUTIVE_FAILURES` failures in a row;
    - each trial records the ``worker`` (host:pid) that ran it;
    - for a higher level, whose YAML ``env_wrapper`` has a :class:`~sb3_lsp.LatentActionWrapper`,
      each trial also samples that wrapper's ``latent_bound``, ``action_repeat`` and ``prior_coef``
      (:func:`~sb3_lsp.zoo.samplers.sample_wrapper_params`) and trains and evaluates in envs wrapped with them, its other
      arguments (``lower``, ``lower_obs``, ``action_prior``) as in the YAML;
    - ``--trial-id`` (0 included, which rl_zoo3 ignores) lays the trial over the YAML entry,
      keeping the ``policy_kwargs`` and wrapper arguments it did not sample;
    - see :meth:`hyperparameters_optimization` for storages and ``--max-total-trials``.
    """

    #: The YAML entry's ``env_wrapper``, which rl_zoo3 turns into one closure and deletes.
    _yaml_env_wrapper: Any = None

    def _preprocess_hyperparams(
        self, hyperparams: dict[str, Any]
    ) -> tuple[dict[str, Any], Callable | None, list[BaseCallback], Callable | None]:
        # rl_zoo3 turns env_wrapper into one closure and deletes it: kept, so that each trial can
        # rebuild the wrappers with its own LatentActionWrapper arguments
        self._yaml_env_wrapper = copy.deepcopy(hyperparams.get("env_wrapper"))
        processed = super()._preprocess_hyperparams(hyperparams)
        # rl_zoo3 writes the run folder next, and finds a misspelt key only when it builds the
        # model or the envs: check the flow's and the wrapper's keys before that
        check_zoo_settings(processed[0], self._yaml_env_wrapper, self.algo)
        return processed

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # rl_zoo3 ignores --trial-id 0, and its dict.update of the converted trial replaces the
        # YAML's policy_kwargs (every flow argument) and knows no wrapper parameters
        if self.trial_id is None or not (self.storage and self.study_name):
            return super().read_hyperparameters()
        # Read the YAML entry alone, then lay the trial and the command line's --hyperparams over
        # it, in rl_zoo3's order
        trial_id, custom_hyperparams = self.trial_id, self.custom_hyperparams
        self.trial_id = self.custom_hyperparams = None
        try:
            hyperparams, _ = super().read_hyperparameters()
        finally:
            self.trial_id, self.custom_hyperparams = trial_id, custom_hyperparams
        print(f"Loading trial {trial_id} of study {self.study_name} from {self.storage}")
        params = self.load_trial(self.storage, self.study_name, trial_id, convert=False)
        # The stock parameters through rl_zoo3's converter, the plugin's as when sampled; the saved
        # config.yml then re-creates the trial's wrappers (rl_zoo3.enjoy)
        stock = HYPERPARAMS_CONVERTER[self.algo]({k: v for k, v in params.items() if k not in FLOW_PARAMS + WRAPPER_PARAMS})
        hyperparams.update(trial_hyperparams(stock, params, hyperparams, hyperparams.get("env_wrapper")))
        hyperparams.update(custom_hyperparams or {})
        saved_hyperparams = OrderedDict(sorted(hyperparams.items()))
        print("Hyperparameters with the trial's:")
        pprint(saved_hyperparams)
        return hyperparams, saved_hyperparams

    def objective(self, trial: optuna.Trial) -> float:
        # rl_zoo3's objective prunes a trial that raised an AssertionError/ValueError (a silent
        # "prune" of a bug), knows nothing of other workers, and its sampler sees no YAML entry
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if self.max_total_trials is not None:
            earlier = [t for t in trial.study.get_trials(deepcopy=False, states=COUNTED_STATES) if t.number < trial.number]
            if len(earlier) >= self.max_total_trials:
                # Two workers can both see N - 1 counted trials and both start one: trial numbers are
                # unique, so the later one knows it is surplus. Optuna cannot withdraw a trial; a nan
                # value ends it FAIL before any work is done.
                trial.set_user_attr("fail_reason", f"surplus: the study already had --max-total-trials {len(earlier)}")
                trial.study.stop()
                return float("nan")
        # rl_zoo3's objective builds the trial's train and eval envs with self.env_wrapper, which the
        # sampler sets for a higher level (hence one trial at a time per process, see
        # hyperparameters_optimization)
        token = current_entry.set((self._hyperparams, self._yaml_env_wrapper, self._set_env_wrapper))
        try:
            return super().objective(trial)
        except optuna.TrialPruned as pruned:
            if pruned.__cause__ is None:  # a real prune, from the pruner
                raise
            # rl_zoo3 turned an AssertionError/ValueError raised while learning into this prune
            trial.set_user_attr("traceback", "".join(traceback.format_exception(pruned.__cause__)))
            raise pruned.__cause__ from None
        except Exception as error:
            trial.set_user_attr("traceback", "".join(traceback.format_exception(error)))
            raise
        finally:
            current_entry.reset(token)

    def _set_env_wrapper(self, env_wrapper: list[Any]) -> None:
        self.env_wrapper = get_wrapper_class({"env_wrapper": env_wrapper})

    def hyperparameters_optimization(self) -> None:
        """
        rl_zoo3's tuning loop and report, with what it has no hook for:

        - ``--storage`` goes through :func:`make_storage` (heartbeat and retry on databases);
        - trials run with ``catch=(Exception,)``: a failed trial does not end the worker;
        - with ``--max-total-trials``, a worker whose share is done waits while other workers'
          trials run, and runs those that come back (a killed worker's, retried, or a failed one);
        - the plots are saved as HTML next to the report instead of opened in a browser.

        :raises ValueError: For ``--n-jobs`` > 1 on a higher level (see :meth:`objective`).
        :raises SystemExit: When the worker stopped on :data:`MAX_CONSECUTIVE_FAILURES` failures.
        """
        if self.n_jobs > 1 and latent_wrapper_index(self._yaml_env_wrapper) is not None:
            raise ValueError(
                f"--n-jobs {self.n_jobs}: trials that sample sb3_lsp.LatentActionWrapper arguments set the env "
                "wrappers of this process's experiment manager, which threads would share. Start several "
                "processes on one --storage and --study-name instead (one trial at a time each)."
            )
        if self.verbose > 0:
            print("Optimizing hyperparameters")
        if self.storage is not None and self.study_name is None:
            warnings.warn(
                f"You passed a remote storage: {self.storage} but no `--study-name`. The study name will be "
                "generated by Optuna: pass the same --study-name to every worker of one study.",
                stacklevel=2,
            )
        if self.tensorboard_log is not None:
            warnings.warn("Tensorboard log is deactivated when running hyperparameter optimization", stacklevel=2)
            self.tensorboard_log = None
        if self.verbose > 0:
            print(f"Sampler: {self.sampler} - Pruner: {self.pruner}")
        storage = make_storage(self.storage)
        study = optuna.create_study(
            sampler=self._create_sampler(self.sampler),
            pruner=self._create_pruner(self.pruner),
            storage=storage,
            study_name=self.study_name,
            load_if_exists=True,
            direction="maximize",
        )
        if isinstance(storage, JournalStorage):
            dead = fail_dead_local_trials(study)
            if dead and self.verbose > 0:
                print(f"Trials {dead} of workers on this host that died: ended FAIL and queued again once")
        if "command" not in study.user_attrs:
            study.set_user_attr("command", " ".join(sys.orig_argv))
            for key in sorted(self._hyperparams):
                study.set_user_attr(key, str(self._hyperparams[key]))

        failures = _ConsecutiveFailures(MAX_CONSECUTIVE_FAILURES)
        try:
            if self.max_total_trials is None:
                self._optimize(study, failures, n_trials=self.n_trials)
            else:
                self._optimize_until_total(study, failures, self.max_total_trials, storage)
        except KeyboardInterrupt:
            pass
        self._write_report(study)
        if failures.tripped:
            raise SystemExit(
                f"Stopped after {failures.limit} failed trials in a row: fix the error in the tracebacks above "
                f"(also in each trial's 'traceback' user attribute of study {study.study_name!r})."
            )

    def _optimize(self, study: optuna.Study, failures: _ConsecutiveFailures, **kwargs: Any) -> None:
        study.optimize(
            self.objective,
            n_jobs=self.n_jobs,
            catch=(Exception,),
            # Frees each trial's envs and model, which its callbacks keep alive in a reference cycle
            gc_after_trial=True,
            callbacks=[failures, *kwargs.pop("callbacks", [])],
            **kwargs,
        )

    def _optimize_until_total(
        self,
        study: optuna.Study,
        failures: _ConsecutiveFailures,
        max_total_trials: int,
        storage: optuna.storages.BaseStorage | None,
    ) -> None:
        max_trials = MaxTrialsCallback(max_total_trials, states=COUNTED_STATES)
        while not failures.tripped:
            if len(study.get_trials(deepcopy=False, states=COUNTED_STATES)) < max_total_trials:
                self._optimize(study, failures, callbacks=[max_trials])
            elif live_running_trials(study, storage):
                # Another worker's trial runs, or its worker died: then (after the heartbeat's grace
                # period on a database, at once on this host's journal) the trial ends FAIL and its
                # retry waits for this worker
                time.sleep(1.0)
                if isinstance(storage, JournalStorage):
                    fail_dead_local_trials(study)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ExperimentalWarning)
                        fail_stale_trials(study)
            else:
                return

    def _write_report(self, study: optuna.Study) -> None:
        print("Number of finished trials: ", len(study.trials))
        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            trial = study.best_trial
            print(f"Best trial: {trial.number}\nValue: {trial.value}\nParams: ")
            for key, value in trial.params.items():
                print(f"    {key}: {value}")
            print("User Attributes: ")
            for key, value in trial.user_attrs.items():
                print(f"    {key}: {value}")
        else:
            print("No trial completed.")

        # rl_zoo3's name, plus the process id: workers of one study that share a log folder end
        # together (the last waits for the others' trials), often within the same second
        report_name = (
            f"report_{self.env_name}_{self.n_trials}-trials-{self.n_timesteps}-{self.sampler}-{self.pruner}"
            f"_{int(time.time())}_{os.getpid()}"
        )
        log_path = os.path.join(self.log_folder, self.algo, report_name)
        if self.verbose:
            print(f"Writing report to {log_path}")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        study.trials_dataframe().to_csv(f"{log_path}.csv")
        with open(f"{log_path}.pkl", "wb+") as file:
            pickle.dump(study, file)
        if self.no_optim_plots:
            return
        for name, plot in (("optimization_history", plot_optimization_history), ("param_importances", plot_param_importances)):
            try:
                plot(study).write_html(f"{log_path}_{name}.html")
            except (ValueError, ImportError, RuntimeError) as error:  # e.g. too few completed trials
                print(f"No {name} plot: {error}")
