"""
RL Zoo (rl_zoo3) and Optuna integration.

``python -m sb3_lsp.zoo COMMAND [FLAGS]`` runs rl_zoo3's ``train``, ``enjoy``, ``record_video``,
``plot_train``, ``plot_from_file`` or ``all_plots`` with the plugin installed first; FLAGS are
rl_zoo3's own, unchanged. Importing this module installs it; inside ``python -m rl_zoo3.train``,
``--gym-packages sb3_lsp`` imports it (see ``sb3_lsp/__init__.py``). It uses rl_zoo3's hooks:

- ``HYPERPARAMS_SAMPLER["sac"]`` and ``["tqc"]``: SAC's (TQC's) stock search space plus, for a
  latent-space policy, the flow's (:func:`sample_flow_params`), with the sampled ``policy_kwargs``
  laid over the YAML's instead of replacing them;
- ``HYPERPARAMS_CONVERTER["sac"]`` and ``["tqc"]``: the same conversion for ``--trial-id``;
- ``rl_zoo3.train.ExperimentManager``: :class:`LSPExperimentManager`, whose trials fail loudly,
  whose database studies survive a killed worker, whose ``--max-total-trials`` is exact across
  workers, and which tunes a higher level's :class:`~sb3_lsp.LatentActionWrapper`
  (:func:`sample_wrapper_params`).
"""

import contextlib
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
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from pprint import pprint
from typing import Any

import optuna
import rl_zoo3.exp_manager
import rl_zoo3.train
import sqlalchemy
import sqlalchemy.exc
from gymnasium import spaces
from optuna.exceptions import ExperimentalWarning
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import plot_optimization_history, plot_param_importances
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import (
    HYPERPARAMS_CONVERTER,
    HYPERPARAMS_SAMPLER,
    convert_offpolicy_params,
    sample_sac_params,
    sample_tqc_params,
)
from rl_zoo3.utils import get_class_by_name, get_wrapper_class
from stable_baselines3.common.callbacks import BaseCallback

from sb3_lsp.checks import finite_number, positive_int, refuse_unknown_keys
from sb3_lsp.hierarchy import LatentActionWrapper
from sb3_lsp.policies import (
    FLOW_KWARG_NAMES,
    SAC_POLICY_ALIASES,
    TQC_POLICY_ALIASES,
    LSPPolicy,
    TQCLSPPolicy,
    _resolve_flow_kwargs,
)

#: Observation-embedding MLPs the sampler chooses from (the paper's is ``"medium"``).
EMBEDDING_NET_ARCHS: dict[str, list[int]] = {"small": [64, 64], "medium": [128, 128], "big": [256, 256]}
#: Names of the flow's parameters in an Optuna study.
FLOW_PARAMS = ("n_coupling_layers", "coupling_hidden", "embedding_size", "embedding_dim")
#: Names of a higher level's :class:`~sb3_lsp.LatentActionWrapper` arguments in an Optuna study.
WRAPPER_PARAMS = ("latent_bound", "action_repeat", "prior_coef")
#: Trial states that ``--max-total-trials`` counts (rl_zoo3's choice: a failed trial is redone).
COUNTED_STATES = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)
#: A worker stops after this many failed trials in a row: that is a bug, not an unlucky sample.
MAX_CONSECUTIVE_FAILURES = 3
#: Environment variable with the heartbeat interval (seconds) of database storages.
HEARTBEAT_INTERVAL_VARIABLE = "SB3_LSP_HEARTBEAT_INTERVAL"
DEFAULT_HEARTBEAT_INTERVAL = 60
#: PostgreSQL advisory lock (any fixed 64-bit number) that workers opening one database take in turn.
SCHEMA_LOCK_KEY = 0x5B3_15B

# The YAML entry of the trial being sampled: rl_zoo3 calls a sampler with (trial, n_actions,
# n_envs, additional_args) only, and LSPExperimentManager.objective sets this around that call.
_yaml_hyperparams: ContextVar[dict[str, Any]] = ContextVar("_yaml_hyperparams")


def sample_flow_params(trial: optuna.Trial) -> dict[str, Any]:
    """
    Sample the flow's parameters (the paper: 2 layers, ``|A|`` hidden units, ``"medium"``, ``2|A|``).

    Sizes are absolute rather than multiples of ``|A|`` so that :func:`flow_kwargs` can rebuild the
    ``policy_kwargs`` from a stored trial alone (``--trial-id``).

    :param trial: The Optuna trial.
    :return: The sampled parameters, named as in :data:`FLOW_PARAMS`.
    """
    return {
        "n_coupling_layers": trial.suggest_int("n_coupling_layers", 1, 4),
        "coupling_hidden": trial.suggest_int("coupling_hidden", 1, 64, log=True),
        "embedding_size": trial.suggest_categorical("embedding_size", list(EMBEDDING_NET_ARCHS)),
        "embedding_dim": trial.suggest_int("embedding_dim", 2, 64, log=True),
    }


def flow_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """
    :param params: The flow's trial parameters (see :func:`sample_flow_params`).
    :return: The corresponding :class:`~sb3_lsp.LSPPolicy` ``policy_kwargs``.
    """
    return {
        "n_coupling_layers": params["n_coupling_layers"],
        "coupling_net_arch": [params["coupling_hidden"]],
        "embedding_net_arch": list(EMBEDDING_NET_ARCHS[params["embedding_size"]]),
        "embedding_dim": params["embedding_dim"],
    }


def is_latent_space_policy(policy: str | type) -> bool:
    """
    :param policy: A hyperparameter file's ``policy``: an alias, or a class (rl_zoo3 imports dotted paths).
    :return: Whether it is this plugin's policy for SAC or TQC.
    """
    return policy in SAC_POLICY_ALIASES or (isinstance(policy, type) and issubclass(policy, (LSPPolicy, TQCLSPPolicy)))


def _policy_kwargs(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """A hyperparameter entry's ``policy_kwargs`` as a dict (YAML files may give a Python string)."""
    policy_kwargs = hyperparams.get("policy_kwargs") or {}
    if isinstance(policy_kwargs, str):
        # Evaluated exactly as rl_zoo3's _preprocess_hyperparams does, in its module's namespace
        policy_kwargs = eval(policy_kwargs, vars(rl_zoo3.exp_manager))
    return dict(policy_kwargs)


def lay_over(hyperparams: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """
    Prepare sampled hyperparameters for rl_zoo3's ``dict.update`` onto a hyperparameter entry.

    :param hyperparams: The entry (YAML file and command line).
    :param sampled: Sampled or stored hyperparameters.
    :return: ``sampled`` with its ``policy_kwargs`` merged into the entry's, which rl_zoo3 would
        otherwise replace (losing, e.g., every flow argument when only ``net_arch`` is sampled).
    """
    if "policy_kwargs" not in sampled:
        return dict(sampled)
    return {**sampled, "policy_kwargs": {**_policy_kwargs(hyperparams), **sampled["policy_kwargs"]}}


def _sample_params(
    stock_sampler: Callable[[optuna.Trial, int, int, dict], dict[str, Any]],
    trial: optuna.Trial,
    n_actions: int,
    n_envs: int,
    additional_args: dict,
) -> dict[str, Any]:
    try:
        hyperparams = _yaml_hyperparams.get()
    except LookupError:
        raise RuntimeError(
            "sb3_lsp's hyperparameter samplers run inside sb3_lsp.zoo.LSPExperimentManager only: tune with "
            "`python -m sb3_lsp.zoo train --optimize ...` or add `--gym-packages sb3_lsp.zoo` to `python -m rl_zoo3.train`."
        ) from None
    sampled = stock_sampler(trial, n_actions, n_envs, additional_args)
    if is_latent_space_policy(hyperparams["policy"]):
        sampled["policy_kwargs"].update(flow_kwargs(sample_flow_params(trial)))
    return lay_over(hyperparams, sampled)


def sample_sac_lsp_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    rl_zoo3's SAC sampler plus, for a latent-space policy, the flow's parameters; unsampled YAML
    ``policy_kwargs`` are kept. Same signature as rl_zoo3's samplers.

    :param trial: The Optuna trial.
    :param n_actions: Action dimension.
    :param n_envs: Number of environments.
    :param additional_args: rl_zoo3's extra arguments (HER settings).
    :return: Hyperparameters to lay over the YAML entry.
    """
    return _sample_params(sample_sac_params, trial, n_actions, n_envs, additional_args)


def sample_tqc_lsp_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    rl_zoo3's TQC sampler plus, for a latent-space policy, the flow's parameters; unsampled YAML
    ``policy_kwargs`` are kept. Same signature as rl_zoo3's samplers.

    :param trial: The Optuna trial.
    :param n_actions: Action dimension.
    :param n_envs: Number of environments.
    :param additional_args: rl_zoo3's extra arguments (HER settings).
    :return: Hyperparameters to lay over the YAML entry.
    """
    return _sample_params(sample_tqc_params, trial, n_actions, n_envs, additional_args)


def convert_lsp_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    rl_zoo3's off-policy converter, plus the flow's parameters moved into ``policy_kwargs``.

    :param params: A stored trial's parameters (``trial.params``).
    :return: Hyperparameters, as the sampler returned them before :func:`lay_over`.
    """
    hyperparams = convert_offpolicy_params({key: value for key, value in params.items() if key not in FLOW_PARAMS})
    if FLOW_PARAMS[0] in params:
        hyperparams["policy_kwargs"].update(flow_kwargs(params))
    return hyperparams


def _wrapper_list(env_wrapper: Any) -> list[Any]:
    """A hyperparameter entry's ``env_wrapper`` (None, one wrapper or a list) as a list, innermost first."""
    return list(env_wrapper) if isinstance(env_wrapper, list) else [env_wrapper] if env_wrapper else []


def _wrapper_entry(entry: Any) -> tuple[str | type, dict[str, Any]]:
    """One item of an ``env_wrapper`` list, as rl_zoo3 reads it: a name (or class) alone, or ``{name: kwargs}``."""
    if isinstance(entry, dict):
        ((name, kwargs),) = entry.items()
        return name, dict(kwargs or {})
    return entry, {}


def latent_wrapper_index(env_wrapper: Any) -> int | None:
    """
    :param env_wrapper: A hyperparameter entry's ``env_wrapper``: None, one wrapper or a list
        (innermost first), as rl_zoo3 takes it.
    :return: The position in that list of the outermost :class:`~sb3_lsp.LatentActionWrapper`,
        or None. That one defines the action space of the level being trained; any under it embed
        levels whose settings were fixed when those levels were trained.
    """
    entries = _wrapper_list(env_wrapper)
    for index in reversed(range(len(entries))):
        name, _ = _wrapper_entry(entries[index])
        wrapper_class = get_class_by_name(name) if isinstance(name, str) else name
        if isinstance(wrapper_class, type) and issubclass(wrapper_class, LatentActionWrapper):
            return index
    return None


def sample_wrapper_params(trial: optuna.Trial, env_wrapper: Any) -> dict[str, Any]:
    """
    Sample the latent action space of the level being trained: ``latent_bound`` (1 to 5 prior
    standard deviations), ``action_repeat`` (1 to 10) and, unless the YAML sets
    ``action_prior: uniform`` (where it has no effect), ``prior_coef`` (0.01 to 10, log scale).

    :param trial: The Optuna trial.
    :param env_wrapper: The hyperparameter entry's ``env_wrapper``; it has a :class:`~sb3_lsp.LatentActionWrapper`.
    :return: The sampled parameters, named as in :data:`WRAPPER_PARAMS`.
    """
    _, kwargs = _wrapper_entry(_wrapper_list(env_wrapper)[latent_wrapper_index(env_wrapper)])
    params = {
        "latent_bound": trial.suggest_float("latent_bound", 1.0, 5.0),
        "action_repeat": trial.suggest_int("action_repeat", 1, 10),
    }
    if kwargs.get("action_prior") != "uniform":
        params["prior_coef"] = trial.suggest_float("prior_coef", 0.01, 10.0, log=True)
    return params


def with_wrapper_params(env_wrapper: Any, params: dict[str, Any]) -> list[Any]:
    """
    :param env_wrapper: A hyperparameter entry's ``env_wrapper``.
    :param params: Sampled or stored trial parameters; those named in :data:`WRAPPER_PARAMS` are used.
    :return: A copy of ``env_wrapper`` (a list) whose outermost LatentActionWrapper takes these
        parameters over its own arguments and keeps the others (``lower``, ``lower_obs``, ...).
    :raises ValueError: When ``env_wrapper`` has no LatentActionWrapper.
    """
    index = latent_wrapper_index(env_wrapper)
    if index is None:
        raise ValueError(
            f"{[key for key in WRAPPER_PARAMS if key in params]} are sb3_lsp.LatentActionWrapper arguments, "
            f"but the env_wrapper of the hyperparameter entry has no LatentActionWrapper: {env_wrapper!r}."
        )
    entries = copy.deepcopy(_wrapper_list(env_wrapper))
    name, kwargs = _wrapper_entry(entries[index])
    entries[index] = {name: {**kwargs, **{key: params[key] for key in WRAPPER_PARAMS if key in params}}}
    return entries


def make_storage(storage: str | None) -> optuna.storages.BaseStorage | None:
    """
    Open ``--storage`` as rl_zoo3 does, adding Optuna's heartbeat to database storages.

    :param storage: ``None`` (in memory), a path ending in ``.log`` (a journal file, one machine
        or a shared file system) or a database URL (e.g. ``postgresql://user:password@host/db``).
        On a database, every worker records a heartbeat every ``$SB3_LSP_HEARTBEAT_INTERVAL``
        seconds (default 60); a trial without one for twice that long ends FAIL and is run again once.
    :return: The storage for :func:`optuna.create_study`.
    """
    if storage is None:
        return None
    if storage.endswith(".log"):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(storage))
    interval = os.environ.get(HEARTBEAT_INTERVAL_VARIABLE, str(DEFAULT_HEARTBEAT_INTERVAL))
    if not interval.isdigit() or int(interval) < 1:
        raise ValueError(f"{HEARTBEAT_INTERVAL_VARIABLE}={interval!r}: set it to a whole number of seconds >= 1.")
    try:
        return _open_database(storage, int(interval))
    except sqlalchemy.exc.IntegrityError:
        # Outside PostgreSQL (see _schema_lock) workers started together on a new database race
        # to create Optuna's tables: the loser finds them there on a second try
        time.sleep(1.0)
        return _open_database(storage, int(interval))


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """
    On PostgreSQL, hold an advisory lock while Optuna creates or checks its tables.

    Workers started together on a new database otherwise all run ``CREATE TYPE``/``CREATE TABLE``
    at once (optuna#1092): a dozen workers lost that race several times in a hundred, with an
    ``IntegrityError`` or a ``ProgrammingError`` (``DuplicateTable``) at any point of the schema.
    """
    engine = sqlalchemy.create_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
    finally:
        engine.dispose()


def _open_database(url: str, heartbeat_interval: int) -> RDBStorage:
    try:
        with _schema_lock(url), warnings.catch_warnings():
            # The heartbeat has been "experimental" since Optuna 2.9; it is what makes workers replaceable.
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except ImportError as error:  # Optuna's message names no package
        raise ImportError(
            f"--storage {url} needs a database driver that is not installed ({error}); "
            "for PostgreSQL: pip install 'sb3-lsp[postgres]'."
        ) from error


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """
    On a journal storage (no heartbeat), end FAIL the RUNNING trials whose ``worker`` (host:pid)
    ran on this host and no longer exists, and queue each again once with the same parameters,
    as RetryHeartbeatStaleTrialCallback does on a database. Trials of other hosts are left alone:
    from here nobody can tell whether their worker lives.

    :return: The numbers of the trials ended FAIL.
    """
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or _process_exists(int(pid)):
            continue
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", f"worker {host}:{pid} died")
        if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            continue  # another worker did it first
        failed.append(trial.number)
        if "retry_of" not in trial.user_attrs:  # once, as on a database
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    return failed


def _live_running_trials(study: optuna.Study, storage: optuna.storages.BaseStorage | None) -> bool:
    """Whether another worker's trial may still come back (FAIL and retried) for this worker to run."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if isinstance(storage, RDBStorage):
        return bool(running)  # the heartbeat ends a dead worker's trial
    host = socket.gethostname()
    return any(str(trial.user_attrs.get("worker", "")).startswith(f"{host}:") for trial in running)


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
        _resolve_flow_kwargs(spaces.Box(-1.0, 1.0, (1,)), {key: given[key] for key in FLOW_KWARG_NAMES if key in given})
    index = latent_wrapper_index(env_wrapper)
    if index is not None:
        _, kwargs = _wrapper_entry(_wrapper_list(env_wrapper)[index])
        known = set(inspect.signature(LatentActionWrapper.__init__).parameters) - {"self", "env"}
        refuse_unknown_keys(kwargs, known, "sb3_lsp.LatentActionWrapper argument in env_wrapper")
        for name, check in (("latent_bound", dict(positive=True)), ("prior_coef", dict(non_negative=True))):
            if name in kwargs:
                finite_number(f"env_wrapper: LatentActionWrapper {name}", kwargs[name], **check)
        if "action_repeat" in kwargs:
            positive_int("env_wrapper: LatentActionWrapper action_repeat", kwargs["action_repeat"])


class LSPExperimentManager(ExperimentManager):
    """
    rl_zoo3's ``ExperimentManager``; everything it does for training is unchanged. For tuning:

    - the samplers see the YAML entry (:func:`sample_sac_lsp_params`);
    - a trial that raises ends FAIL with its traceback logged and stored in its ``traceback``
      user attribute (rl_zoo3 turns an ``AssertionError``/``ValueError`` raised while learning
      into a prune and prints one line), and the worker goes on with the next trial, up to
      :data:`MAX_CONSECUTIVE_FAILURES` failures in a row;
    - each trial records the ``worker`` (host:pid) that ran it;
    - for a higher level, whose YAML ``env_wrapper`` has a :class:`~sb3_lsp.LatentActionWrapper`,
      each trial also samples that wrapper's ``latent_bound``, ``action_repeat`` and ``prior_coef``
      (:func:`sample_wrapper_params`) and trains and evaluates in envs wrapped with them, its other
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
        # Kept so that each trial can rebuild the wrappers with its own LatentActionWrapper arguments
        self._yaml_env_wrapper = copy.deepcopy(hyperparams.get("env_wrapper"))
        processed = super()._preprocess_hyperparams(hyperparams)
        # rl_zoo3 writes the run folder next, and finds a misspelt key only when it builds the
        # model or the envs: check the flow's and the wrapper's keys before that
        check_zoo_settings(processed[0], self._yaml_env_wrapper, self.algo)
        return processed

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
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
        # The wrapper's parameters go to env_wrapper, the others through the algorithm's converter
        # to the model; the saved config.yml then re-creates the trial's wrappers (rl_zoo3.enjoy)
        model_params = {key: value for key, value in params.items() if key not in WRAPPER_PARAMS}
        hyperparams.update(lay_over(hyperparams, HYPERPARAMS_CONVERTER[self.algo](model_params)))
        if any(key in params for key in WRAPPER_PARAMS):
            hyperparams["env_wrapper"] = with_wrapper_params(hyperparams.get("env_wrapper"), params)
        hyperparams.update(custom_hyperparams or {})
        saved_hyperparams = OrderedDict(sorted(hyperparams.items()))
        print("Hyperparameters with the trial's:")
        pprint(saved_hyperparams)
        return hyperparams, saved_hyperparams

    def objective(self, trial: optuna.Trial) -> float:
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
        token = _yaml_hyperparams.set(self._hyperparams)
        try:
            if latent_wrapper_index(self._yaml_env_wrapper) is not None:
                # rl_zoo3's objective builds the trial's train and eval envs with self.env_wrapper
                # (hence one trial at a time per process, see hyperparameters_optimization)
                env_wrapper = with_wrapper_params(self._yaml_env_wrapper, sample_wrapper_params(trial, self._yaml_env_wrapper))
                self.env_wrapper = get_wrapper_class({"env_wrapper": env_wrapper})
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
            _yaml_hyperparams.reset(token)

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
            elif _live_running_trials(study, storage):
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


def register() -> None:
    """Install the plugin in rl_zoo3 (see the module docstring); idempotent."""
    HYPERPARAMS_SAMPLER.update(sac=sample_sac_lsp_params, tqc=sample_tqc_lsp_params)
    HYPERPARAMS_CONVERTER.update(sac=convert_lsp_params, tqc=convert_lsp_params)
    rl_zoo3.train.ExperimentManager = LSPExperimentManager
    # `python -m rl_zoo3.train` runs that module as __main__, a second module object whose train()
    # looks ExperimentManager up in its own globals, bound before --gym-packages imports this
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "rl_zoo3.train":
        main.ExperimentManager = LSPExperimentManager


register()
