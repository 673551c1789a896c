"""Latent-space policies: a real-NVP flow actor for SAC (``LSPPolicy``) and TQC (``TQCLSPPolicy``)."""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from sb3_lsp.flows import ConditionalRealNVP, TanhBijector, standard_normal_log_prob

#: Paper appendix A: 128-128 ReLU observation embedding.
DEFAULT_EMBEDDING_NET_ARCH = (128, 128)
#: Soft bound on each coupling layer's log-scale: exp(+-5) spans 0.0067 to 148 per layer.
DEFAULT_LOG_SCALE_BOUND = 5.0


class LSPActor(BasePolicy):
    """
    Latent-space policy actor: ``a = tanh(f(h; s))``, ``h ~ N(0, I)``, ``f`` a real-NVP flow.

    The observation is embedded once per call by an MLP; the embedding conditions every
    coupling layer. The log-likelihood of an action is exact:
    ``log pi(a|s) = log N(h) - log|det df/dh| - log|det dtanh/du|``.

    :param observation_space: Observation space.
    :param action_space: Action space (a ``Box``).
    :param features_extractor: Network to extract features (``nn.Flatten`` for vectors).
    :param features_dim: Number of features.
    :param n_coupling_layers: Number of affine coupling layers.
    :param coupling_net_arch: Hidden layer sizes of each ``s`` and ``t`` network.
    :param embedding_net_arch: Hidden layer sizes of the observation embedding MLP.
    :param embedding_dim: Output size of the observation embedding.
    :param log_scale_bound: Soft bound on each coupling layer's log-scale.
    :param activation_fn: Activation of the observation embedding MLP.
    :param normalize_images: Whether to divide image observations by 255.
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
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.features_dim = features_dim
        self.n_coupling_layers = n_coupling_layers
        self.coupling_net_arch = coupling_net_arch
        self.embedding_net_arch = embedding_net_arch
        self.embedding_dim = embedding_dim
        self.log_scale_bound = log_scale_bound
        self.activation_fn = activation_fn

        self.action_dim = get_action_dim(action_space)
        self.embedding = nn.Sequential(*create_mlp(features_dim, embedding_dim, embedding_net_arch, activation_fn))
        self.flow = ConditionalRealNVP(self.action_dim, embedding_dim, n_coupling_layers, coupling_net_arch, log_scale_bound)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            features_extractor=self.features_extractor,
            features_dim=self.features_dim,
            n_coupling_layers=self.n_coupling_layers,
            coupling_net_arch=self.coupling_net_arch,
            embedding_net_arch=self.embedding_net_arch,
            embedding_dim=self.embedding_dim,
            log_scale_bound=self.log_scale_bound,
            activation_fn=self.activation_fn,
        )
        return data

    def embed(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: Observations (preprocessed as by ``obs_to_tensor``), batch size ``B``.
        :return: Observation embedding, shape ``(B, embedding_dim)``.
        """
        return self.embedding(self.extract_features(obs, self.features_extractor))

    def _squashed_flow(self, h: th.Tensor, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Map latents to actions; return the actions and ``log pi(a|s)``."""
        u, flow_log_det = self.flow(h, context)
        actions, squash_log_det = TanhBijector.forward(u)
        return actions, standard_normal_log_prob(h) - flow_log_det - squash_log_det

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        Sample actions with the reparameterisation trick.

        :param obs: Observations, batch size ``B``.
        :return: Actions in ``[-1, 1]`` of shape ``(B, D)`` and their log-likelihood, shape ``(B,)``.
        """
        context = self.embed(obs)
        h = th.randn(context.shape[0], self.action_dim, device=context.device, dtype=context.dtype)
        return self._squashed_flow(h, context)

    def log_prob(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """
        Log-likelihood of given actions (inverse flow after ``atanh``; finite at the box edges).

        :param obs: Observations, batch size ``B``.
        :param actions: Actions in ``[-1, 1]``, shape ``(B, D)``.
        :return: ``log pi(a|s)``, shape ``(B,)``.
        """
        u, squash_inv_log_det = TanhBijector.inverse(actions)
        h, flow_inv_log_det = self.flow.inverse(u, self.embed(obs))
        return standard_normal_log_prob(h) + flow_inv_log_det + squash_inv_log_det

    def latent_to_action(self, obs: PyTorchObs, h: th.Tensor) -> th.Tensor:
        """
        Deterministic map ``a = tanh(f(h; s))``.

        :param obs: Observations, batch size ``B``.
        :param h: Latents, shape ``(B, D)``.
        :return: Actions in ``[-1, 1]``, shape ``(B, D)``.
        """
        u, _ = self.flow(h, self.embed(obs))
        return th.tanh(u)

    def action_to_latent(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """
        Inverse of :meth:`latent_to_action` (actions on the box edges are clipped just inside).

        :param obs: Observations, batch size ``B``.
        :param actions: Actions in ``[-1, 1]``, shape ``(B, D)``.
        :return: Latents, shape ``(B, D)``.
        """
        u, _ = TanhBijector.inverse(actions)
        h, _ = self.flow.inverse(u, self.embed(obs))
        return h

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        """
        :param obs: Observations, batch size ``B``.
        :param deterministic: Use the prior's mode ``h = 0`` instead of sampling ``h``.
        :return: Actions in ``[-1, 1]``, shape ``(B, D)``.
        """
        context = self.embed(obs)
        shape = (context.shape[0], self.action_dim)
        if deterministic:
            h = th.zeros(shape, device=context.device, dtype=context.dtype)
        else:
            h = th.randn(shape, device=context.device, dtype=context.dtype)
        u, _ = self.flow(h, context)
        return th.tanh(u)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


def _flow_kwargs(
    action_space: spaces.Space,
    n_coupling_layers: int,
    coupling_net_arch: list[int] | None,
    embedding_net_arch: list[int] | None,
    embedding_dim: int | None,
    log_scale_bound: float,
) -> dict[str, Any]:
    """Validate the flow's policy_kwargs and fill in the paper's defaults (appendix A)."""
    if not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"LSPPolicy needs a continuous Box action space, got {action_space}. "
            "The flow actor maps a Gaussian latent onto a box; use a Box action space "
            "(or a discrete-action algorithm such as DQN/PPO for discrete actions)."
        )
    action_dim = get_action_dim(action_space)
    coupling_net_arch = [action_dim] if coupling_net_arch is None else list(coupling_net_arch)
    embedding_net_arch = list(DEFAULT_EMBEDDING_NET_ARCH) if embedding_net_arch is None else list(embedding_net_arch)
    embedding_dim = 2 * action_dim if embedding_dim is None else embedding_dim

    if not isinstance(n_coupling_layers, int) or n_coupling_layers < 1:
        raise ValueError(f"n_coupling_layers must be an integer >= 1, got {n_coupling_layers!r}.")
    for name, sizes in (("coupling_net_arch", coupling_net_arch), ("embedding_net_arch", embedding_net_arch)):
        if not all(isinstance(size, int) and size > 0 for size in sizes):
            raise ValueError(f"{name} must be a list of positive integers (hidden layer sizes), got {sizes!r}.")
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim!r}.")
    if not log_scale_bound > 0:
        raise ValueError(f"log_scale_bound must be a positive number, got {log_scale_bound!r}.")
    return dict(
        n_coupling_layers=n_coupling_layers,
        coupling_net_arch=coupling_net_arch,
        embedding_net_arch=embedding_net_arch,
        embedding_dim=embedding_dim,
        log_scale_bound=float(log_scale_bound),
    )


class _LatentSpacePolicyMixin:
    """
    Puts an :class:`LSPActor` into an SB3 actor-critic policy (SAC's or TQC's).

    Takes the flow's keyword arguments, forwards everything else (critic ``net_arch``,
    ``n_critics``, optimizer, ...) to the algorithm's own policy class unchanged.
    """

    flow_kwargs: dict[str, Any]
    actor: LSPActor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        *,
        n_coupling_layers: int = 2,
        coupling_net_arch: list[int] | None = None,
        embedding_net_arch: list[int] | None = None,
        embedding_dim: int | None = None,
        log_scale_bound: float = DEFAULT_LOG_SCALE_BOUND,
        **kwargs: Any,
    ) -> None:
        # Checked before building anything, so errors name the user's mistake, not torch's.
        self.flow_kwargs = _flow_kwargs(
            action_space, n_coupling_layers, coupling_net_arch, embedding_net_arch, embedding_dim, log_scale_bound
        )
        if kwargs.get("use_sde", False):
            raise ValueError(
                "use_sde=True is not supported by LSPPolicy: gSDE perturbs the weights of a Gaussian "
                "actor's mean, and the flow actor has no such Gaussian; its exploration comes from the "
                "latent h ~ N(0, I). Pass use_sde=False (the default)."
            )
        net_arch = kwargs.get("net_arch")
        if isinstance(net_arch, dict) and "pi" in net_arch:
            raise ValueError(
                "LSPPolicy has no 'pi' net_arch: the actor is the flow. Set the observation embedding with "
                "embedding_net_arch=[...] and the coupling networks with coupling_net_arch=[...]; "
                "net_arch=dict(qf=[...]) or a plain list sets the critic."
            )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)  # type: ignore[call-arg]

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
        ).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self.flow_kwargs)
        return data


class LSPPolicy(_LatentSpacePolicyMixin, SACPolicy):
    """
    SAC policy whose actor is a latent-space policy (:class:`LSPActor`).

    Use as ``SAC("LSPPolicy", env)`` after ``import sb3_lsp``. Defaults follow the paper's
    appendix A; the critic is SB3's (``net_arch`` sets it, default ``[256, 256]``).

    :param observation_space: Observation space.
    :param action_space: Action space (a ``Box``).
    :param lr_schedule: Learning rate schedule.
    :param n_coupling_layers: Number of affine coupling layers (default 2).
    :param coupling_net_arch: Hidden sizes of each ``s``/``t`` network (default ``[|A|]``).
    :param embedding_net_arch: Hidden sizes of the observation embedding (default ``[128, 128]``).
    :param embedding_dim: Size of the observation embedding (default ``2 * |A|``).
    :param log_scale_bound: Soft bound on each coupling layer's log-scale (default 5).
    :param kwargs: Every other :class:`stable_baselines3.sac.policies.SACPolicy` argument.
    """


class TQCLSPPolicy(_LatentSpacePolicyMixin, TQCPolicy):
    """
    TQC policy whose actor is a latent-space policy (:class:`LSPActor`).

    Use as ``TQC("LSPPolicy", env)`` after ``import sb3_lsp``. Same flow arguments as
    :class:`LSPPolicy`; every other argument goes to :class:`sb3_contrib.tqc.policies.TQCPolicy`.
    """
