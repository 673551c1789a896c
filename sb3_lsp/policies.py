"""Latent-space policies: a real-NVP flow actor for SAC (``LSPPolicy``) and TQC (``TQCLSPPolicy``)."""

import inspect
import numbers
import warnings
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim, is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from sb3_lsp.checks import finite_number, positive_int, refuse_unknown_keys
from sb3_lsp.flows import ConditionalRealNVP, TanhSquash, mlp, standard_normal_log_prob

#: Paper appendix A: 128-128 ReLU observation embedding.
PAPER_EMBEDDING_NET_ARCH = (128, 128)
#: Soft bound on each coupling layer's log-scale: exp(+-5) spans 0.0067 to 148 per layer.
DEFAULT_LOG_SCALE_BOUND = 5.0

#: The flow's ``policy_kwargs`` switches, all off: the flow of release 0.1.0 (the paper's appendix
#: text). A model saved by that release carries no flow settings and loads with these.
FLOW_SWITCHES: dict[str, bool] = {
    "identity_init": False,
    "gaussian_base": False,
    "embedding_layer_norm": False,
    "embedding_output_activation": False,
    "coupling_layer_norm": False,
    "fused_coupling": False,
    "context_projection": False,
}
#: ``log(1 - tanh(u)^2 + epsilon)``'s epsilon in SB3's squashed Gaussian and the authors' code.
SB3_SQUASH_EPSILON = 1e-6
#: Flow settings added after release 0.1.0 that are not switches, at the value of every model saved before them.
LATER_FLOW_SETTINGS: dict[str, Any] = {"squash_epsilon": 0.0}
#: Every flow ``policy_kwargs`` key (the switches, the sizes, the s/t activation and the squash's epsilon).
FLOW_KWARG_NAMES = (
    "n_coupling_layers",
    "coupling_net_arch",
    "coupling_activation_fn",
    "embedding_net_arch",
    "embedding_dim",
    "log_scale_bound",
    *FLOW_SWITCHES,
    *LATER_FLOW_SETTINGS,
)


def paper_text_flow_kwargs(action_dim: int) -> dict[str, Any]:
    """
    The flow of the paper's appendix A (release 0.1.0's defaults) for an action space of ``action_dim``:
    2 coupling layers with one tanh hidden layer of ``|A|`` units in each s/t network, a 128-128
    ReLU observation embedding of size ``2 |A|`` with a linear output, random initial couplings.
    """
    return dict(
        n_coupling_layers=2,
        coupling_net_arch=[action_dim],
        coupling_activation_fn=nn.Tanh,
        embedding_net_arch=list(PAPER_EMBEDDING_NET_ARCH),
        embedding_dim=2 * action_dim,
        log_scale_bound=DEFAULT_LOG_SCALE_BOUND,
        **FLOW_SWITCHES,
        **LATER_FLOW_SETTINGS,
    )


def gaussian_start_flow_kwargs(action_dim: int) -> dict[str, Any]:
    """
    The default flow (chosen by benchmarks/configs/lsp_screen.yml and lsp_finalists.yml, where it
    is "G"): SB3's actor as the first layer, a 256-256 ReLU trunk with a state-conditioned
    ``mu(s) + sigma(s) * h``, then 2 identity-started coupling layers whose fused s/t networks have
    one tanh hidden layer of ``|A|`` units. At initialisation the actor is SB3's squashed Gaussian;
    the couplings can only add to it. One projection of the trunk's output feeds every layer
    (``context_projection``): the same function and initial distribution as separate Linear
    layers (the flow screened and validated as "G" ran those), in fewer operations.
    """
    return {
        **paper_text_flow_kwargs(action_dim),
        "embedding_net_arch": [256],
        "embedding_dim": 256,
        "embedding_output_activation": True,
        "gaussian_base": True,
        "identity_init": True,
        "fused_coupling": True,
        "context_projection": True,
    }


#: The named flows ``policy_kwargs=dict(flow=...)`` starts from; the other flow arguments override them.
FLOW_PRESETS = {"gaussian_start": gaussian_start_flow_kwargs, "paper_text": paper_text_flow_kwargs}
#: The flow of this release when ``flow`` is not given.
DEFAULT_FLOW = "gaussian_start"


def default_flow_kwargs(action_dim: int) -> dict[str, Any]:
    """The default flow of this release (:data:`DEFAULT_FLOW`) for an action space of ``action_dim``."""
    return FLOW_PRESETS[DEFAULT_FLOW](action_dim)


def scale_group_learning_rates(optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """
    Before each step: every parameter group after the first learns at its ``lr_scale`` times the
    first group's learning rate. SB3 sets every group to its schedule's value before each update
    (``update_learning_rate``), so a scale set once would be overwritten.
    """
    for group in optimizer.param_groups[1:]:
        group["lr"] = optimizer.param_groups[0]["lr"] * group["lr_scale"]


def actor_optimizer_kwargs(optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    ``optimizer_kwargs`` for the flow actor's optimizer: as given, plus ``fused=True`` for Adam and
    AdamW unless the user chose ``fused`` or ``foreach`` (pass ``fused=False`` for torch's default step).

    Why: torch's default Adam step on CPU loops over the parameter tensors, about 26 aten ops each,
    and the flow actor has more tensors than SB3's Gaussian (12 against 8 with the default flow): on
    CPU that alone cost 104 more ops per update. The fused step is one kernel per parameter group
    for the same update. The critic's optimizer stays SB3's, with ``optimizer_kwargs`` as given.
    """
    if issubclass(optimizer_class, (th.optim.Adam, th.optim.AdamW)) and not {"fused", "foreach"} & optimizer_kwargs.keys():
        return {**optimizer_kwargs, "fused": True}
    return dict(optimizer_kwargs)


class LSPActor(BasePolicy):
    """
    Latent-space policy actor: ``a = tanh(f(h; s))``, ``h ~ N(0, I)``, ``f`` a real-NVP flow.

    The observation is embedded once per call by an MLP; the embedding conditions every
    coupling layer. The log-likelihood of an action is exact:
    ``log pi(a|s) = log N(h) - log|det df/dh| - log|det dtanh/du|``.

    The flow's settings travel with its weights (the module's extra state), so a state dict
    loaded into an actor built with other settings rebuilds the actor with the saved ones first.

    :param observation_space: Observation space.
    :param action_space: Action space (a ``Box``).
    :param features_extractor: Network to extract features (``nn.Flatten`` for vectors).
    :param features_dim: Number of features.
    :param n_coupling_layers: Number of affine coupling layers (0 with ``gaussian_base``: SB3's
        squashed Gaussian alone).
    :param coupling_net_arch: Hidden layer sizes of each ``s`` and ``t`` network.
    :param embedding_net_arch: Hidden layer sizes of the observation embedding MLP.
    :param embedding_dim: Output size of the observation embedding.
    :param log_scale_bound: Soft bound on each coupling layer's log-scale.
    :param activation_fn: Activation of the observation embedding MLP.
    :param normalize_images: Whether to divide image observations by 255.
    :param coupling_activation_fn: Hidden activation of the ``s`` and ``t`` networks.
    :param identity_init: Coupling layers start as the identity (last layers zero).
    :param gaussian_base: A state-conditioned Gaussian layer ``mu(s) + sigma(s) * h`` comes first.
    :param embedding_layer_norm: LayerNorm after each hidden layer of the embedding.
    :param embedding_output_activation: Apply ``activation_fn`` to the embedding's output too.
    :param coupling_layer_norm: LayerNorm after each hidden layer of the ``s`` and ``t`` networks.
    :param fused_coupling: One network per coupling layer emits both ``s`` and ``t``.
    :param context_projection: One Linear map of the embedding gives every flow layer's use of it
        (the Gaussian layer's mean and log-std, each ``s``/``t`` network's first-layer context part):
        the same function in fewer, larger operations.
    :param squash_epsilon: ``epsilon`` in the squash's ``log(1 - tanh(u)^2 + epsilon)``: 0 is exact,
        :data:`SB3_SQUASH_EPSILON` is SB3's (:class:`~sb3_lsp.flows.TanhSquash`).
    :param coupling_lr_scale: The coupling layers' share of the actor's learning rate
        (:meth:`parameter_groups`).
    """

    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_coupling_layers: int,
        coupling_net_arch: list[int],
        embedding_net_arch: list[int],
        embedding_dim: int,
        log_scale_bound: float,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        coupling_activation_fn: type[nn.Module] = nn.Tanh,
        identity_init: bool = False,
        gaussian_base: bool = False,
        embedding_layer_norm: bool = False,
        embedding_output_activation: bool = False,
        coupling_layer_norm: bool = False,
        fused_coupling: bool = False,
        context_projection: bool = False,
        squash_epsilon: float = 0.0,
        coupling_lr_scale: float = 1.0,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.coupling_lr_scale = coupling_lr_scale
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.action_dim = get_action_dim(action_space)
        self._build_flow(
            dict(
                n_coupling_layers=n_coupling_layers,
                coupling_net_arch=coupling_net_arch,
                coupling_activation_fn=coupling_activation_fn,
                embedding_net_arch=embedding_net_arch,
                embedding_dim=embedding_dim,
                log_scale_bound=log_scale_bound,
                identity_init=identity_init,
                gaussian_base=gaussian_base,
                embedding_layer_norm=embedding_layer_norm,
                embedding_output_activation=embedding_output_activation,
                coupling_layer_norm=coupling_layer_norm,
                fused_coupling=fused_coupling,
                context_projection=context_projection,
                squash_epsilon=squash_epsilon,
            )
        )

    def _build_flow(self, flow_kwargs: dict[str, Any]) -> None:
        """(Re)build the embedding and the flow; every flow setting becomes an attribute."""
        for name, value in flow_kwargs.items():
            setattr(self, name, value)
        self.embedding = mlp(
            self.features_dim,
            self.embedding_dim,
            self.embedding_net_arch,
            self.activation_fn,
            layer_norm=self.embedding_layer_norm,
            output_activation=self.embedding_output_activation,
        )
        self.flow = ConditionalRealNVP(
            self.action_dim,
            self.embedding_dim,
            self.n_coupling_layers,
            self.coupling_net_arch,
            self.log_scale_bound,
            activation_fn=self.coupling_activation_fn,
            layer_norm=self.coupling_layer_norm,
            zero_init=self.identity_init,
            fused=self.fused_coupling,
            gaussian_base=self.gaussian_base,
            context_projection=self.context_projection,
        )

    def flow_kwargs(self) -> dict[str, Any]:
        """The flow's settings (the ``policy_kwargs`` that rebuild this actor)."""
        return {name: getattr(self, name) for name in FLOW_KWARG_NAMES}

    @staticmethod
    def flow_state(flow_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Flow settings as saved with the weights: plain values, since SB3 loads with ``weights_only=True``."""
        return {**flow_kwargs, "coupling_activation_fn": flow_kwargs["coupling_activation_fn"].__name__}

    def get_extra_state(self) -> dict[str, Any]:
        return self.flow_state(self.flow_kwargs())

    def set_extra_state(self, state: dict[str, Any]) -> None:
        # A setting added after a model was saved is off in it (FLOW_SWITCHES: all off is release 0.1.0).
        activation = getattr(nn, state["coupling_activation_fn"])
        saved = {**FLOW_SWITCHES, **LATER_FLOW_SETTINGS, **state, "coupling_activation_fn": activation}
        if saved == self.flow_kwargs():
            return
        # Weights of another flow (such as a release 0.1.0 model under newer defaults): rebuild in
        # place, before torch loads the children, so the actor object and SB3's aliases stay valid.
        device = self.device
        self._build_flow(saved)
        self.to(device)
        if hasattr(self, "optimizer"):
            self.optimizer = type(self.optimizer)(self.parameter_groups(), **self.optimizer.defaults)
            if self.coupling_lr_scale != 1.0:
                self.optimizer.register_step_pre_hook(scale_group_learning_rates)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """
        The actor's parameters as optimizer groups: one, or with ``coupling_lr_scale`` two, the coupling
        layers' own parameters in the second with their ``lr_scale`` (their share of the flow's one
        context projection, with ``context_projection``, stays in the first).
        """
        coupling_parameters = [parameter for layer in self.flow._couplings for parameter in layer.parameters()]
        if self.coupling_lr_scale == 1.0 or not coupling_parameters:  # nothing to scale
            return [{"params": list(self.parameters())}]
        couplings = {id(parameter) for parameter in coupling_parameters}
        rest = [parameter for parameter in self.parameters() if id(parameter) not in couplings]
        return [{"params": rest}, {"params": coupling_parameters, "lr_scale": self.coupling_lr_scale}]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            features_extractor=self.features_extractor,
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            coupling_lr_scale=self.coupling_lr_scale,
            **self.flow_kwargs(),
        )
        return data

    def embed(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: Observations (preprocessed as by ``obs_to_tensor``), batch size ``B``.
        :return: Observation embedding, shape ``(B, embedding_dim)``.
        """
        features = self.extract_features(obs, self.features_extractor)
        # One NaN observation would otherwise turn every weight into NaN, silently (SB3's Gaussian
        # actor fails in its distribution's argument check instead). Two ops: ~2 us at batch 1.
        if not th.isfinite(features).all():
            rows = (~th.isfinite(features)).flatten(1).any(dim=1).nonzero().flatten().tolist()
            raise ValueError(
                f"LSPPolicy was given a non-finite observation (NaN or inf) at batch row(s) {rows[:10]}: "
                "the flow would turn it into NaN actions and NaN weights. Check the environment's "
                "observations (VecCheckNan from stable_baselines3.common.vec_env finds the step)."
            )
        return self.embedding(features)

    def decode(
        self, context: th.Tensor, h: th.Tensor | None, with_log_prob: bool = False
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """
        The actor's one map from latents to actions, ``a = tanh(f(h; s))``.

        :param context: Observation embedding (:meth:`embed`), shape ``(B, C)``.
        :param h: Latents, shape ``(B, D)``; ``None`` for the latent's mode ``h = 0`` (mapped directly,
            fewer ops than mapping zeros).
        :param with_log_prob: Also return ``log pi(a|s) = log N(h) - log|det df/dh| - log|det dtanh/du|``.
        :return: Actions in ``[-1, 1]`` of shape ``(B, D)`` and their log-likelihood of shape
            ``(B,)`` (``None`` unless asked for).
        """
        if h is None and not with_log_prob:
            return TanhSquash.forward(self.flow.mode(context), with_log_det=False)[0], None
        if h is None:
            h = context.new_zeros((context.shape[0], self.action_dim))
        u, flow_log_det = self.flow(h, context, with_log_det=with_log_prob)
        actions, _ = TanhSquash.forward(u, with_log_det=False)  # its log-det comes in the fused log-prob below
        if not with_log_prob:
            return actions, None
        assert flow_log_det is not None
        return actions, TanhSquash.squashed_normal_log_prob(h, u, flow_log_det, self.squash_epsilon)

    def _sample_latent(self, context: th.Tensor) -> th.Tensor:
        return th.randn(context.shape[0], self.action_dim, device=context.device, dtype=context.dtype)

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        Sample actions with the reparameterisation trick.

        :param obs: Observations, batch size ``B``.
        :return: Actions in ``[-1, 1]`` of shape ``(B, D)`` and their log-likelihood, shape ``(B,)``.
        """
        context = self.embed(obs)
        return self.decode(context, self._sample_latent(context), with_log_prob=True)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """
        Log-likelihood of given actions (inverse flow after ``atanh``; finite at the box edges).

        :param obs: Observations, batch size ``B``.
        :param actions: Actions in ``[-1, 1]``, shape ``(B, D)``.
        :return: ``log pi(a|s)``, shape ``(B,)``.
        """
        u, squash_inv_log_det = TanhSquash.inverse(actions, epsilon=self.squash_epsilon)
        h, flow_inv_log_det = self.flow.inverse(u, self.embed(obs))
        return standard_normal_log_prob(h) + flow_inv_log_det + squash_inv_log_det

    def latent_to_action(self, obs: PyTorchObs, h: th.Tensor) -> th.Tensor:
        """
        Deterministic map ``a = tanh(f(h; s))``.

        :param obs: Observations, batch size ``B``.
        :param h: Latents, shape ``(B, D)``.
        :return: Actions in ``[-1, 1]``, shape ``(B, D)``.
        """
        return self.decode(self.embed(obs), h)[0]

    def action_to_latent(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """
        Inverse of :meth:`latent_to_action` (actions on the box edges are clipped just inside).

        :param obs: Observations, batch size ``B``.
        :param actions: Actions in ``[-1, 1]``, shape ``(B, D)``.
        :return: Latents, shape ``(B, D)``.
        """
        u, _ = TanhSquash.inverse(actions, with_log_det=False)
        h, _ = self.flow.inverse(u, self.embed(obs), with_log_det=False)
        return h

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """
        :param obs: Observations, batch size ``B``.
        :param deterministic: Use the prior's mode ``h = 0`` instead of sampling ``h``.
        :return: Actions in ``[-1, 1]``, shape ``(B, D)``.
        """
        context = self.embed(obs)
        return self.decode(context, None if deterministic else self._sample_latent(context))[0]

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


def _resolve_flow_kwargs(action_space: spaces.Space, given: dict[str, Any]) -> dict[str, Any]:
    """Validate the flow ``policy_kwargs`` the user gave and fill in this release's defaults."""
    if not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"LSPPolicy needs a continuous Box action space, got {action_space}. "
            "The flow actor maps a Gaussian latent onto a box; use a Box action space "
            "(or a discrete-action algorithm such as DQN/PPO for discrete actions)."
        )
    given = dict(given)
    preset = given.pop("flow", None)
    if preset is not None and preset not in FLOW_PRESETS:
        raise ValueError(
            f"flow must name one of the flows {sorted(FLOW_PRESETS)} (the other flow arguments override it), "
            f"got {preset!r}. flow='paper_text' is the paper's appendix A (release 0.1.0's defaults)."
        )
    start = default_flow_kwargs if preset is None else FLOW_PRESETS[preset]
    kwargs = {**start(get_action_dim(action_space)), **given}
    kwargs["embedding_dim"] = positive_int("embedding_dim", kwargs["embedding_dim"])
    for name in ("coupling_net_arch", "embedding_net_arch"):
        sizes = kwargs[name]
        if not isinstance(sizes, (list, tuple)):
            raise ValueError(f"{name} must be a list of positive integers (hidden layer sizes), got {sizes!r}.")
        kwargs[name] = [positive_int(f"{name} entries (hidden layer sizes)", size) for size in sizes]
    kwargs["log_scale_bound"] = finite_number("log_scale_bound", kwargs["log_scale_bound"], positive=True)
    kwargs["squash_epsilon"] = finite_number("squash_epsilon", kwargs["squash_epsilon"], non_negative=True)
    activation = kwargs["coupling_activation_fn"]
    if isinstance(activation, str):  # YAML: a torch.nn class name such as "Tanh" or "nn.ReLU"
        activation = getattr(nn, activation.removeprefix("nn."), activation)
        kwargs["coupling_activation_fn"] = activation
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise ValueError(
            f"coupling_activation_fn must be an nn.Module class such as nn.Tanh (or its name, 'Tanh'), got {activation!r}."
        )
    for name in FLOW_SWITCHES:
        if not isinstance(kwargs[name], (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {kwargs[name]!r}.")
        kwargs[name] = bool(kwargs[name])
    layers = kwargs["n_coupling_layers"]
    if isinstance(layers, numbers.Integral) and not isinstance(layers, bool) and layers == 0:
        # With the Gaussian first layer and no coupling layer the actor is SB3's squashed Gaussian
        # itself: the ablation that shows what the couplings add. Without it nothing would be learned.
        if not kwargs["gaussian_base"]:
            raise ValueError(
                "n_coupling_layers=0 leaves the flow without any layer, so the actor could not learn: "
                "it needs gaussian_base=True (then the actor is SB3's squashed Gaussian), or use 1 or more layers."
            )
        kwargs["n_coupling_layers"] = 0
    else:
        kwargs["n_coupling_layers"] = positive_int("n_coupling_layers", layers)
    return kwargs


_OBSERVATION_KINDS = {
    "LSPPolicy": "vector (Box) observations",
    "CnnLSPPolicy": "image observations",
    "MultiInputLSPPolicy": "Dict observations",
}
_SB3_NAMES = {"LSPPolicy": "MlpPolicy", "CnnLSPPolicy": "CnnPolicy", "MultiInputLSPPolicy": "MultiInputPolicy"}
#: Arguments of SB3's Gaussian actor, which the flow actor has no use for.
_GAUSSIAN_ONLY_ARGUMENTS = ("log_std_init", "use_expln", "clip_mean")


def _warn_about_gaussian_only_arguments(kwargs: dict[str, Any]) -> None:
    # Only values other than SB3's defaults: SB3 writes the defaults into every policy it saves
    # (``policy.save``), and a saved policy must reload without a warning.
    defaults = inspect.signature(SACPolicy.__init__).parameters
    ignored = [name for name in _GAUSSIAN_ONLY_ARGUMENTS if name in kwargs and kwargs[name] != defaults[name].default]
    if ignored:
        warnings.warn(
            f"{', '.join(ignored)} set the Gaussian actor of SB3's MlpPolicy; LSPPolicy's actor is a flow and "
            "ignores them: remove them. The flow learns its spread (gaussian_base=True gives it a Gaussian "
            "first layer whose log-std is clamped to SB3's [-20, 2]).",
            UserWarning,
            stacklevel=4,
        )


def _critic_net_arch(net_arch: Any) -> Any:
    """SB3's ``net_arch`` for the critic: a list, or ``dict(qf=[...])`` (the actor is the flow)."""
    if isinstance(net_arch, dict):
        if set(net_arch) != {"qf"}:
            raise ValueError(
                f"LSPPolicy's net_arch sets the critic only, got the keys {sorted(net_arch)}. The actor is the flow: "
                "set its observation embedding with embedding_net_arch=[...] and its coupling networks with "
                "coupling_net_arch=[...]; pass the critic as net_arch=[...] or net_arch=dict(qf=[...])."
            )
        return list(net_arch["qf"])
    return net_arch


class _LatentSpacePolicyMixin:
    """
    Puts an :class:`LSPActor` into an SB3 actor-critic policy (SAC's or TQC's).

    Takes the flow's keyword arguments, forwards everything else (critic ``net_arch``,
    ``n_critics``, optimizer, ...) to the algorithm's own policy class unchanged. A flow argument
    left at ``None`` takes the value of the named ``flow`` (:data:`FLOW_PRESETS`; default
    :data:`DEFAULT_FLOW`).
    """

    flow_kwargs: dict[str, Any]
    actor: LSPActor
    #: The name users pass (``SAC("LSPPolicy", env)``) and the features extractor it defaults to,
    #: as SB3's ``MlpPolicy`` / ``CnnPolicy`` / ``MultiInputPolicy``.
    policy_alias: ClassVar[str] = "LSPPolicy"
    default_features_extractor_class: ClassVar[type[BaseFeaturesExtractor]] = FlattenExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        *,
        flow: str | None = None,
        n_coupling_layers: int | None = None,
        coupling_net_arch: list[int] | None = None,
        coupling_activation_fn: type[nn.Module] | None = None,
        embedding_net_arch: list[int] | None = None,
        embedding_dim: int | None = None,
        log_scale_bound: float | None = None,
        identity_init: bool | None = None,
        gaussian_base: bool | None = None,
        embedding_layer_norm: bool | None = None,
        embedding_output_activation: bool | None = None,
        coupling_layer_norm: bool | None = None,
        fused_coupling: bool | None = None,
        context_projection: bool | None = None,
        squash_epsilon: float | None = None,
        coupling_lr_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        given = {name: value for name, value in locals().items() if name in FLOW_KWARG_NAMES and value is not None}
        self.coupling_lr_scale = finite_number("coupling_lr_scale", coupling_lr_scale, positive=True)
        # Checked before building anything, so errors name the user's mistake, not torch's.
        self.flow_kwargs = _resolve_flow_kwargs(action_space, given if flow is None else {**given, "flow": flow})
        # What a model saved by release 0.1.0 (no flow settings in its weights, and no ``flow``
        # argument, which came later) was built with: that release's defaults, the paper's text.
        self._release_0_1_0_flow_kwargs = {**paper_text_flow_kwargs(get_action_dim(action_space)), **given}
        if kwargs.get("use_sde", False):
            raise ValueError(
                "use_sde=True is not supported by LSPPolicy: gSDE perturbs the weights of a Gaussian "
                "actor's mean, and the flow actor has no such Gaussian; its exploration comes from the "
                "latent h ~ N(0, I). Pass use_sde=False (the default)."
            )
        self._refuse_unknown_arguments(kwargs)
        _warn_about_gaussian_only_arguments(kwargs)
        kwargs["net_arch"] = _critic_net_arch(kwargs.get("net_arch"))
        if "features_extractor_class" not in kwargs:
            self._check_observation_space(observation_space, normalize_images=kwargs.get("normalize_images", True))
            kwargs["features_extractor_class"] = self.default_features_extractor_class
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)  # type: ignore[call-arg]

    @classmethod
    def _refuse_unknown_arguments(cls, kwargs: dict[str, Any]) -> None:
        """A misspelt policy_kwargs key gets the closest valid name, not torch's or SB3's TypeError."""
        base = next(klass for klass in cls.__mro__ if klass in (SACPolicy, TQCPolicy))
        known = set(inspect.signature(base.__init__).parameters) | set(FLOW_KWARG_NAMES) | {"flow", "coupling_lr_scale"}
        refuse_unknown_keys(kwargs, known - {"self", "kwargs"}, f"{cls.policy_alias} policy_kwargs key")

    @classmethod
    def _check_observation_space(cls, observation_space: spaces.Space, normalize_images: bool) -> None:
        """With the policy's own features extractor, name the policy that fits these observations."""
        is_dict = isinstance(observation_space, spaces.Dict)
        normalized = not normalize_images
        is_image = not is_dict and is_image_space(observation_space, check_channels=False, normalized_image=normalized)
        fitting = "MultiInputLSPPolicy" if is_dict else "CnnLSPPolicy" if is_image else "LSPPolicy"
        if fitting == cls.policy_alias:
            return
        kind = "a Dict" if is_dict else "images" if is_image else f"vectors ({observation_space})"
        hint = (
            " (or pass features_extractor_class=FlattenExtractor to flatten the images on purpose)"
            if is_image and cls.policy_alias == "LSPPolicy"
            else ""
        )
        raise ValueError(
            f"'{cls.policy_alias}' is for {_OBSERVATION_KINDS[cls.policy_alias]}, but this environment's "
            f"observations are {kind}: use '{fitting}', as SB3 uses '{_SB3_NAMES[fitting]}' there{hint}; "
            "or pass your own features_extractor_class."
        )

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        # Weights saved by release 0.1.0 carry no flow settings: they are that release's flow.
        if "actor._extra_state" not in state_dict:
            state_dict = {**state_dict, "actor._extra_state": LSPActor.flow_state(self._release_0_1_0_flow_kwargs)}
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)  # type: ignore[misc]
        self.flow_kwargs = self.actor.flow_kwargs()
        return result

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        # SB3 built the actor's optimizer over one group of every parameter, with optimizer_kwargs as
        # given; the actor's own is rebuilt with its parameter groups and, by default, a fused step.
        self.actor.optimizer = self.optimizer_class(  # type: ignore[attr-defined]
            self.actor.parameter_groups(),
            lr=lr_schedule(1),
            **actor_optimizer_kwargs(self.optimizer_class, self.optimizer_kwargs),  # type: ignore[attr-defined]
        )
        if self.coupling_lr_scale != 1.0:
            self.actor.optimizer.register_step_pre_hook(scale_group_learning_rates)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> LSPActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        return LSPActor(
            observation_space=actor_kwargs["observation_space"],
            action_space=actor_kwargs["action_space"],
            features_extractor=actor_kwargs["features_extractor"],
            features_dim=actor_kwargs["features_dim"],
            activation_fn=actor_kwargs["activation_fn"],
            normalize_images=actor_kwargs["normalize_images"],
            **self.flow_kwargs,
            coupling_lr_scale=self.coupling_lr_scale,
        ).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self.flow_kwargs, coupling_lr_scale=self.coupling_lr_scale)
        return data

    def set_training_mode(self, mode: bool) -> None:
        """
        SB3's, skipped when the policy, its actor and its critic are already in ``mode``.

        SB3's ``predict`` calls it on every call, and its walk over every module (50-60 in a flow
        actor and SB3's critics, about a microsecond each) took a quarter of a batch-1 ``predict``.
        So a submodule switched on its own (``policy.actor.embedding.train()``) is not switched
        back by ``predict``: switch the policy (``policy.set_training_mode(False)``) instead.

        :param mode: Training mode (True) or evaluation mode (False).
        """
        if self.training == mode and self.actor.training == mode and self.critic.training == mode:  # type: ignore[attr-defined]
            return
        super().set_training_mode(mode)  # type: ignore[misc]


class LSPPolicy(_LatentSpacePolicyMixin, SACPolicy):
    """
    SAC policy whose actor is a latent-space policy (:class:`LSPActor`).

    Use as ``SAC("LSPPolicy", env)`` after ``import sb3_lsp``. The critic is SB3's (``net_arch``
    sets it, default ``[256, 256]``). The flow starts from a named flow (``flow``, default
    ``"gaussian_start"``); every flow argument given overrides that flow's value. The defaults
    below are ``"gaussian_start"``'s, with ``"paper_text"``'s (the paper's appendix A, release
    0.1.0's defaults) in brackets where they differ.

    :param observation_space: Observation space.
    :param action_space: Action space (a ``Box``).
    :param lr_schedule: Learning rate schedule.
    :param flow: The named flow to start from: ``"gaussian_start"`` (SB3's squashed Gaussian at
        initialisation, couplings that can only add to it; chosen by measurement, see
        benchmarks/RESULTS.md) or ``"paper_text"`` (the paper's appendix A).
    :param n_coupling_layers: Number of affine coupling layers (default 2; 0 with ``gaussian_base``
        leaves SB3's squashed Gaussian alone, the ablation of the couplings).
    :param coupling_net_arch: Hidden sizes of each ``s``/``t`` network (default ``[|A|]``).
    :param coupling_activation_fn: Hidden activation of the ``s``/``t`` networks (default ``nn.Tanh``).
    :param embedding_net_arch: Hidden sizes of the observation embedding (default ``[256]``;
        paper text ``[128, 128]``).
    :param embedding_dim: Size of the observation embedding (default 256; paper text ``2 * |A|``).
    :param log_scale_bound: Soft bound on each coupling layer's log-scale (default 5).
    :param identity_init: Zero the last layer of every ``s``/``t`` network, so each coupling
        layer starts as the identity (default True; paper text False).
    :param gaussian_base: Put a state-conditioned element-wise affine layer
        ``u0 = mu(s) + sigma(s) * h`` first, ``mu`` and ``log sigma`` read from the embedding and
        ``log sigma`` clamped to SB3's ``[-20, 2]``. With ``identity_init`` the actor starts as
        SB3's squashed Gaussian, and the coupling layers can only add to it (default True;
        paper text False).
    :param embedding_layer_norm: LayerNorm after each hidden layer of the embedding (default False).
    :param embedding_output_activation: Apply ``activation_fn`` (ReLU) to the embedding's output,
        as the authors' released code and SB3's actor do (default True; paper text False).
    :param coupling_layer_norm: LayerNorm after each hidden layer of the ``s``/``t`` networks (default False).
    :param fused_coupling: One network per coupling layer emits both ``s`` and ``t`` (fewer ops;
        default True; paper text False).
    :param context_projection: One Linear map of the embedding gives every flow layer's use of it:
        the Gaussian layer's mean and log-std and each ``s``/``t`` network's first-layer context
        part. The same function as without, in fewer and larger operations (default True; paper text False).
    :param squash_epsilon: ``epsilon`` in the squash's log-determinant ``log(1 - tanh(u)^2 + epsilon)``
        (default 0, exact). SB3's squashed Gaussian and the authors' code use ``1e-6``
        (:data:`SB3_SQUASH_EPSILON`): saturated actions then cost no more entropy than ``log(epsilon)``
        per coordinate, where the exact term keeps pulling them back.
    :param coupling_lr_scale: The coupling layers learn at this fraction of the actor's learning rate
        (and of its schedule), the Gaussian layer, the embedding and the context projection at all of
        it (default 1). Below 1 the Gaussian layer leads and the couplings refine what it learned.
    :param kwargs: Every other :class:`stable_baselines3.sac.policies.SACPolicy` argument.
    """


class TQCLSPPolicy(_LatentSpacePolicyMixin, TQCPolicy):
    """
    TQC policy whose actor is a latent-space policy (:class:`LSPActor`).

    Use as ``TQC("LSPPolicy", env)`` after ``import sb3_lsp``. Same flow arguments as
    :class:`LSPPolicy`; every other argument goes to :class:`sb3_contrib.tqc.policies.TQCPolicy`.
    """


class CnnLSPPolicy(LSPPolicy):
    """
    :class:`LSPPolicy` for image observations: SB3's ``NatureCNN`` features, as SAC's ``CnnPolicy``.

    Use as ``SAC("CnnLSPPolicy", env)``. Actor and critic each have their own CNN unless
    ``share_features_extractor=True`` (SB3's default for SAC).
    """

    policy_alias = "CnnLSPPolicy"
    default_features_extractor_class = NatureCNN


class MultiInputLSPPolicy(LSPPolicy):
    """
    :class:`LSPPolicy` for ``Dict`` observations (goal-conditioned tasks, HER): SB3's
    ``CombinedExtractor`` features, as SAC's ``MultiInputPolicy``.

    Use as ``SAC("MultiInputLSPPolicy", env)``.
    """

    policy_alias = "MultiInputLSPPolicy"
    default_features_extractor_class = CombinedExtractor


class TQCCnnLSPPolicy(TQCLSPPolicy):
    """:class:`TQCLSPPolicy` for image observations (``NatureCNN``): ``TQC("CnnLSPPolicy", env)``."""

    policy_alias = "CnnLSPPolicy"
    default_features_extractor_class = NatureCNN


class TQCMultiInputLSPPolicy(TQCLSPPolicy):
    """:class:`TQCLSPPolicy` for ``Dict`` observations (``CombinedExtractor``): ``TQC("MultiInputLSPPolicy", env)``."""

    policy_alias = "MultiInputLSPPolicy"
    default_features_extractor_class = CombinedExtractor


#: The policy names registered on SAC and TQC by ``import sb3_lsp``.
SAC_POLICY_ALIASES: dict[str, type[LSPPolicy]] = {
    "LSPPolicy": LSPPolicy,
    "CnnLSPPolicy": CnnLSPPolicy,
    "MultiInputLSPPolicy": MultiInputLSPPolicy,
}
TQC_POLICY_ALIASES: dict[str, type[TQCLSPPolicy]] = {
    "LSPPolicy": TQCLSPPolicy,
    "CnnLSPPolicy": TQCCnnLSPPolicy,
    "MultiInputLSPPolicy": TQCMultiInputLSPPolicy,
}
