"""
The plugin's search space, added to rl_zoo3's SAC and TQC samplers: the flow's parameters for a
latent-space policy, and a higher level's :class:`~sb3_lsp.LatentActionWrapper` parameters when the
YAML entry's ``env_wrapper`` has one.

One mechanism for both, used when a trial is sampled and when a stored trial is replayed
(``--trial-id``): :func:`sample_lsp_params` suggests the parameters, :func:`lsp_hyperparams` turns
parameters into the YAML entries they set (the flow's into ``policy_kwargs``, laid over the
entry's; the wrapper's into the ``env_wrapper`` list, over the wrapper's own arguments).
"""

import copy
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import optuna
import rl_zoo3.exp_manager
from rl_zoo3.hyperparams_opt import sample_sac_params, sample_tqc_params
from rl_zoo3.utils import get_class_by_name

from sb3_lsp.hierarchy import LatentActionWrapper
from sb3_lsp.policies import FLOW_PRESETS, SAC_POLICY_ALIASES, LSPPolicy, TQCLSPPolicy

#: Observation-embedding MLPs the sampler chooses from (the paper's is ``"medium"``).
EMBEDDING_NET_ARCHS: dict[str, list[int]] = {"small": [64, 64], "medium": [128, 128], "big": [256, 256]}
#: Names of the flow's parameters in an Optuna study.
FLOW_PARAMS = ("n_coupling_layers", "coupling_hidden", "embedding_size", "embedding_dim", "flow", "coupling_layer_norm")
#: The named flow of a stored trial sampled before ``flow`` was a parameter: that release's default.
FLOW_OF_OLDER_TRIALS = "paper_text"
#: Names of a higher level's :class:`~sb3_lsp.LatentActionWrapper` arguments in an Optuna study.
WRAPPER_PARAMS = ("latent_bound", "action_repeat", "prior_coef")

#: The YAML entry (after rl_zoo3's preprocessing) and its ``env_wrapper`` (as written) of the trial
#: being sampled, and where the sampled wrappers go. rl_zoo3 calls a sampler with (trial, n_actions,
#: n_envs, additional_args) only: :class:`~sb3_lsp.zoo.experiment.LSPExperimentManager` sets this
#: around its objective.
current_entry: ContextVar[tuple[dict[str, Any], Any, Callable[[list[Any]], None]]] = ContextVar("current_entry")


def sample_flow_params(trial: optuna.Trial) -> dict[str, Any]:
    """
    Sample the flow's parameters: the named flow they start from (:data:`~sb3_lsp.FLOW_PRESETS`),
    its sizes (the paper: 2 layers, ``|A|`` hidden units, ``"medium"``, ``2|A|``) and LayerNorm in
    the s/t networks.

    Sizes are absolute rather than multiples of ``|A|`` so that :func:`flow_kwargs` can rebuild the
    ``policy_kwargs`` from a stored trial alone (``--trial-id``).

    :param trial: The Optuna trial.
    :return: The sampled parameters, named as in :data:`FLOW_PARAMS`.
    """
    return {
        "n_coupling_layers": trial.suggest_int("n_coupling_layers", 1, 4),
        "coupling_hidden": trial.suggest_int("coupling_hidden", 1, 64, log=True),
        "embedding_size": trial.suggest_categorical("embedding_size", list(EMBEDDING_NET_ARCHS)),
        "embedding_dim": trial.suggest_int("embedding_dim", 2, 256, log=True),
        "flow": trial.suggest_categorical("flow", sorted(FLOW_PRESETS)),
        "coupling_layer_norm": trial.suggest_categorical("coupling_layer_norm", [False, True]),
    }


def flow_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """
    :param params: The flow's trial parameters (see :func:`sample_flow_params`); a trial stored
        before ``flow`` and ``coupling_layer_norm`` were sampled gets the flow it was trained with
        (:data:`FLOW_OF_OLDER_TRIALS`, no LayerNorm).
    :return: The corresponding :class:`~sb3_lsp.LSPPolicy` ``policy_kwargs``.
    """
    return {
        "flow": params.get("flow", FLOW_OF_OLDER_TRIALS),
        "n_coupling_layers": params["n_coupling_layers"],
        "coupling_net_arch": [params["coupling_hidden"]],
        "embedding_net_arch": list(EMBEDDING_NET_ARCHS[params["embedding_size"]]),
        "embedding_dim": params["embedding_dim"],
        "coupling_layer_norm": params.get("coupling_layer_norm", False),
    }


def is_latent_space_policy(policy: str | type) -> bool:
    """
    :param policy: A hyperparameter file's ``policy``: an alias, or a class (rl_zoo3 imports dotted paths).
    :return: Whether it is this plugin's policy for SAC or TQC.
    """
    return policy in SAC_POLICY_ALIASES or (isinstance(policy, type) and issubclass(policy, (LSPPolicy, TQCLSPPolicy)))


def policy_kwargs_of(hyperparams: dict[str, Any]) -> dict[str, Any]:
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
    return {**sampled, "policy_kwargs": {**policy_kwargs_of(hyperparams), **sampled["policy_kwargs"]}}


def wrapper_list(env_wrapper: Any) -> list[Any]:
    """A hyperparameter entry's ``env_wrapper`` (None, one wrapper or a list) as a list, innermost first."""
    return list(env_wrapper) if isinstance(env_wrapper, list) else [env_wrapper] if env_wrapper else []


def wrapper_entry(entry: Any) -> tuple[str | type, dict[str, Any]]:
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
    entries = wrapper_list(env_wrapper)
    for index in reversed(range(len(entries))):
        name, _ = wrapper_entry(entries[index])
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
    _, kwargs = wrapper_entry(wrapper_list(env_wrapper)[latent_wrapper_index(env_wrapper)])
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
    entries = copy.deepcopy(wrapper_list(env_wrapper))
    name, kwargs = wrapper_entry(entries[index])
    entries[index] = {name: {**kwargs, **{key: params[key] for key in WRAPPER_PARAMS if key in params}}}
    return entries


def sample_lsp_params(trial: optuna.Trial, hyperparams: dict[str, Any], env_wrapper: Any) -> dict[str, Any]:
    """
    Suggest the plugin's parameters for one trial.

    :param trial: The Optuna trial.
    :param hyperparams: The YAML entry (its ``policy`` says whether the flow is tuned).
    :param env_wrapper: The entry's ``env_wrapper`` as written (a LatentActionWrapper in it is tuned).
    :return: The flow's parameters (:data:`FLOW_PARAMS`) and the wrapper's (:data:`WRAPPER_PARAMS`), as they apply.
    """
    params = sample_flow_params(trial) if is_latent_space_policy(hyperparams["policy"]) else {}
    if latent_wrapper_index(env_wrapper) is not None:
        params |= sample_wrapper_params(trial, env_wrapper)
    return params


def lsp_hyperparams(params: dict[str, Any], hyperparams: dict[str, Any], env_wrapper: Any) -> dict[str, Any]:
    """
    The YAML entries a trial's plugin parameters set (sampled now, or stored for ``--trial-id``).

    :param params: Trial parameters; only those named in :data:`FLOW_PARAMS` and :data:`WRAPPER_PARAMS` are read.
    :param hyperparams: The YAML entry.
    :param env_wrapper: The entry's ``env_wrapper`` as written.
    :return: ``policy_kwargs`` (the entry's, with the flow's laid over) and ``env_wrapper`` (with
        the wrapper's parameters), each only when the trial has such parameters.
    """
    entries: dict[str, Any] = {}
    if FLOW_PARAMS[0] in params:
        entries["policy_kwargs"] = {**policy_kwargs_of(hyperparams), **flow_kwargs(params)}
    if any(key in params for key in WRAPPER_PARAMS):
        entries["env_wrapper"] = with_wrapper_params(env_wrapper, params)
    return entries


def trial_hyperparams(
    stock: dict[str, Any], params: dict[str, Any], hyperparams: dict[str, Any], env_wrapper: Any
) -> dict[str, Any]:
    """
    What one trial lays over the YAML entry, sampled now or stored (``--trial-id``).

    :param stock: rl_zoo3's stock hyperparameters of the trial (its sampler's, or its converter's).
    :param params: The trial's parameters; the plugin's (see :func:`sample_lsp_params`) are read.
    :param hyperparams: The YAML entry.
    :param env_wrapper: The entry's ``env_wrapper`` as written.
    :return: Hyperparameters for ``dict.update`` on the entry: ``policy_kwargs`` merged as the
        entry's, then the stock sampler's (``net_arch``), then the flow's; ``env_wrapper`` when the
        trial has wrapper parameters.
    """
    laid = lay_over(hyperparams, stock)
    with_stock = {**hyperparams, "policy_kwargs": laid.get("policy_kwargs", policy_kwargs_of(hyperparams))}
    return {**laid, **lsp_hyperparams(params, with_stock, env_wrapper)}


def _sample_params(
    stock_sampler: Callable[[optuna.Trial, int, int, dict], dict[str, Any]],
    trial: optuna.Trial,
    n_actions: int,
    n_envs: int,
    additional_args: dict,
) -> dict[str, Any]:
    try:
        hyperparams, env_wrapper, set_env_wrapper = current_entry.get()
    except LookupError:
        raise RuntimeError(
            "sb3_lsp's hyperparameter samplers run inside sb3_lsp.zoo.LSPExperimentManager only: tune with "
            "`python -m sb3_lsp.zoo train --optimize ...` or add `--gym-packages sb3_lsp.zoo.plugin` to "
            "`python -m rl_zoo3.train`."
        ) from None
    stock = stock_sampler(trial, n_actions, n_envs, additional_args)
    sampled = trial_hyperparams(stock, sample_lsp_params(trial, hyperparams, env_wrapper), hyperparams, env_wrapper)
    if "env_wrapper" in sampled:
        # rl_zoo3 passes what a sampler returns to the model, and builds the trial's envs with its
        # experiment manager's env_wrapper: the trial's wrappers go there
        set_env_wrapper(sampled.pop("env_wrapper"))
    return sampled


def sample_sac_lsp_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    rl_zoo3's SAC sampler plus :func:`sample_lsp_params`; unsampled YAML ``policy_kwargs`` are
    kept. Same signature as rl_zoo3's samplers.

    :param trial: The Optuna trial.
    :param n_actions: Action dimension.
    :param n_envs: Number of environments.
    :param additional_args: rl_zoo3's extra arguments (HER settings).
    :return: Hyperparameters to lay over the YAML entry.
    """
    return _sample_params(sample_sac_params, trial, n_actions, n_envs, additional_args)


def sample_tqc_lsp_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    rl_zoo3's TQC sampler plus :func:`sample_lsp_params`; unsampled YAML ``policy_kwargs`` are
    kept. Same signature as rl_zoo3's samplers.

    :param trial: The Optuna trial.
    :param n_actions: Action dimension.
    :param n_envs: Number of environments.
    :param additional_args: rl_zoo3's extra arguments (HER settings).
    :return: Hyperparameters to lay over the YAML entry.
    """
    return _sample_params(sample_tqc_params, trial, n_actions, n_envs, additional_args)
