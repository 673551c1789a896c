"""Bijectors of the latent-space policy: an observation-conditioned real-NVP flow and tanh.

Every transform keeps its forward map, its inverse and the log-determinant of the map it
applied in one place. Shapes: ``B`` is the batch size, ``D`` the action (= latent)
dimension, ``C`` the size of the observation embedding that conditions the flow.
"""

import math
import warnings

import torch as th
from torch import nn
from torch.nn import functional as F

#: SB3's bounds on a Gaussian actor's log-std (stable_baselines3.sac.policies LOG_STD_MIN/MAX).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def mlp(
    in_dim: int,
    out_dim: int,
    hidden_sizes: list[int],
    activation_fn: type[nn.Module],
    layer_norm: bool = False,
    output_activation: bool = False,
    zero_last: bool = False,
) -> nn.Sequential:
    """
    ``Linear -> [LayerNorm] -> activation`` per hidden layer, then a last ``Linear``.

    Without the options the layer indices are those of SB3's ``create_mlp`` (``0, 2, 4, ...`` for
    the Linear layers), so state dicts saved by release 0.1.0 keep their keys.

    :param in_dim: Input size.
    :param out_dim: Output size.
    :param hidden_sizes: Hidden layer sizes.
    :param activation_fn: Activation after every hidden layer.
    :param layer_norm: Put a ``LayerNorm`` between each hidden Linear layer and its activation.
    :param output_activation: Apply ``activation_fn`` to the output as well.
    :param zero_last: Initialise the last Linear layer's weight and bias to zero (output 0).
    """
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(in_dim, size), *([nn.LayerNorm(size)] if layer_norm else []), activation_fn()]
        in_dim = size
    last = nn.Linear(in_dim, out_dim)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    layers.append(last)
    if output_activation:
        layers.append(activation_fn())
    return nn.Sequential(*layers)


class ProjectedMLP(nn.Module):
    """
    An :func:`mlp` of ``[x, context]`` whose first layer's context part (and bias) is computed
    outside it: ``first = x W_x^T + c``, with ``c`` this network's slice of the one projection of
    the context that :class:`ConditionalRealNVP` computes for all its layers at once (one matrix
    product instead of one per layer, and no concatenation of ``x`` with the context).

    The same function as the :func:`mlp` of ``x_dim + context_dim`` inputs, initialised as
    ``nn.Linear`` initialises that first layer (uniform in ``+-1 / sqrt(x_dim + context_dim)``).

    :param x_dim: Size of ``x`` (0: the network reads the context alone).
    :param context_dim: Size ``C`` of the context the projection reads (sets the initial scale).
    :param out_dim: Output size.
    :param hidden_sizes: Hidden layer sizes.
    :param activation_fn: Activation after every hidden layer.
    :param layer_norm: Put a ``LayerNorm`` between each hidden layer and its activation.
    :param zero_last: Initialise the last layer to zero (output 0). Without hidden layers the
        first layer is the last: the flow then zeroes this network's rows of the projection too.
    """

    def __init__(
        self,
        x_dim: int,
        context_dim: int,
        out_dim: int,
        hidden_sizes: list[int],
        activation_fn: type[nn.Module],
        layer_norm: bool = False,
        zero_last: bool = False,
    ) -> None:
        super().__init__()
        #: Width of the first layer: the size of this network's slice of the context projection.
        self.context_width = hidden_sizes[0] if hidden_sizes else out_dim
        #: The first layer's weights and bias start uniform in +-init_bound (its x part here, its context
        #: part in the flow's projection): nn.Linear's bound for ``x_dim + context_dim`` inputs, or 0
        #: where the first layer is the zero-initialised last one.
        self.init_bound = 0.0 if zero_last and not hidden_sizes else 1.0 / math.sqrt(x_dim + context_dim)
        self.x_weight = nn.Parameter(th.empty(self.context_width, x_dim)) if x_dim > 0 else None
        if self.x_weight is not None:
            nn.init.uniform_(self.x_weight, -self.init_bound, self.init_bound)
        after_first: list[nn.Module] = []
        if hidden_sizes:
            after_first = [*([nn.LayerNorm(self.context_width)] if layer_norm else []), activation_fn()]
            after_first += list(
                mlp(self.context_width, out_dim, hidden_sizes[1:], activation_fn, layer_norm, zero_last=zero_last)
            )
        self.rest = nn.Sequential(*after_first)

    def forward(self, x: th.Tensor | None, context_part: th.Tensor) -> th.Tensor:
        """
        :param x: Input, shape ``(B, x_dim)`` (``None`` when ``x_dim`` is 0).
        :param context_part: This network's slice of the context projection, shape ``(B, context_width)``.
        :return: Output, shape ``(B, out_dim)``.
        """
        first = context_part if self.x_weight is None else th.addmm(context_part, x, self.x_weight.t())
        return self.rest(first)


class _AffineParameters(nn.Module):
    """
    The scale and shift networks of an affine layer and its soft log-scale bound, shared by
    :class:`AffineCoupling` and :class:`ElementwiseAffine` (sub-module names are those of release
    0.1.0, so saved state dicts keep their keys).

    :param x_dim: Size of the networks' input besides the context (the conditioning half).
    :param context_dim: Size ``C`` of the observation embedding the networks read.
    :param n_transformed: Number ``D_T`` of coordinates the layer transforms.
    :param hidden_sizes: Hidden layer sizes of the ``s`` and ``t`` networks.
    :param log_scale_bound: Soft bound ``|s| < bound`` on the log-scale.
    :param activation_fn: Hidden activation of the ``s`` and ``t`` networks.
    :param layer_norm: LayerNorm after every hidden layer of the ``s`` and ``t`` networks.
    :param zero_init: Start as the identity (last layers initialised to zero).
    :param fused: One network emits both ``s`` and ``t``.
    :param projected: The networks' first layers read their context part from the flow's one
        context projection (:class:`ProjectedMLP`) instead of a concatenation with the context.
    """

    def __init__(
        self,
        x_dim: int,
        context_dim: int,
        n_transformed: int,
        hidden_sizes: list[int],
        log_scale_bound: float,
        activation_fn: type[nn.Module],
        layer_norm: bool,
        zero_init: bool,
        fused: bool,
        projected: bool = False,
    ) -> None:
        super().__init__()
        self.n_transformed = n_transformed
        self.projected = projected
        self.log_scale_bound = log_scale_bound
        self.fused = fused
        # As 0-dim tensors, not Python floats: a float operand costs a conversion per call, which
        # at batch 1 takes longer than the arithmetic. Not persistent: derived from the setting.
        self.register_buffer("_bound", th.tensor(log_scale_bound), persistent=False)
        self.register_buffer("_inverse_bound", th.tensor(1.0 / log_scale_bound), persistent=False)

        def net(out_dim: int) -> nn.Module:
            if projected:
                return ProjectedMLP(x_dim, context_dim, out_dim, hidden_sizes, activation_fn, layer_norm, zero_init)
            return mlp(x_dim + context_dim, out_dim, hidden_sizes, activation_fn, layer_norm, zero_last=zero_init)

        if fused:
            self.scale_shift_net = net(2 * n_transformed)
        else:
            self.scale_net = net(n_transformed)
            self.shift_net = net(n_transformed)
        #: With ``projected``: the widths of the networks' slices of the context projection.
        self.context_widths = [net.context_width for net in self.children()] if projected else []

    @property
    def context_width(self) -> int:
        """With ``projected``: the width of this layer's slice of the flow's context projection."""
        return sum(self.context_widths)

    def _bounded_scale_shift(self, x: th.Tensor | None, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        :param x: The networks' input besides the context, shape ``(B, x_dim)`` (``None`` if ``x_dim`` is 0).
        :param context: The observation embedding, shape ``(B, C)``; with ``projected`` this
            layer's slice of the context projection instead, shape ``(B, context_width)``.
        :return: ``s = bound * tanh(s_raw / bound)`` and ``t``, each of shape ``(B, D_T)``.
        """
        if self.projected:
            if self.fused:
                raw_log_scale, shift = self.scale_shift_net(x, context).chunk(2, dim=-1)
            else:
                scale_part, shift_part = context.split(self.context_widths, dim=-1)
                raw_log_scale, shift = self.scale_net(x, scale_part), self.shift_net(x, shift_part)
        else:
            net_input = context if x is None else th.cat((x, context), dim=-1)
            if self.fused:
                raw_log_scale, shift = self.scale_shift_net(net_input).chunk(2, dim=-1)
            else:
                raw_log_scale, shift = self.scale_net(net_input), self.shift_net(net_input)
        return self._bound * th.tanh(raw_log_scale * self._inverse_bound), shift


class AffineCoupling(_AffineParameters):
    """
    One affine coupling layer ``y_T = x_T * exp(s) + t``, ``y_C = x_C``.

    ``x_T`` is one contiguous half of the vector (the transformed part) and ``x_C`` the other
    half (the conditioning part). ``s`` and ``t`` are MLPs of ``[x_C, context]``: two separate
    networks, or with ``fused`` one network whose output is ``[s, t]`` (half the ops).
    The log-scale is softly bounded, ``s = bound * tanh(s_raw / bound)``, so ``exp(s)`` can
    never overflow while staying close to ``s_raw`` for small values. With ``zero_init`` the
    last layer of the ``s`` and ``t`` networks starts at zero: the layer starts as the identity.
    A vector of one coordinate has no halves: :class:`ElementwiseAffine` is its layer.

    :param dim: Dimension ``D >= 2`` of the vector the layer acts on.
    :param context_dim: Dimension ``C`` of the conditioning observation embedding.
    :param transform_first: Whether the first ``split`` coordinates are transformed
        (otherwise the remaining ``D - split`` are).
    :param split: Index where the vector is cut into its two halves (``0 < split < D``).
    :param hidden_sizes: Hidden layer sizes of the ``s`` and ``t`` networks.
    :param log_scale_bound: Soft bound ``|s| < bound`` on the log-scale.
    :param activation_fn: Hidden activation of the ``s`` and ``t`` networks (tanh in the authors' code).
    :param layer_norm: LayerNorm after every hidden layer of the ``s`` and ``t`` networks.
    :param zero_init: Start as the identity (last layers initialised to zero).
    :param fused: One network emits both ``s`` and ``t``.
    :param projected: Read the context part of the networks' first layers from the flow's context
        projection: the ``context`` argument of every method is then this layer's slice of it.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        transform_first: bool,
        split: int,
        hidden_sizes: list[int],
        log_scale_bound: float,
        activation_fn: type[nn.Module] = nn.Tanh,
        layer_norm: bool = False,
        zero_init: bool = False,
        fused: bool = False,
        projected: bool = False,
    ) -> None:
        if not 0 < split < dim:
            raise ValueError(
                f"AffineCoupling needs 0 < split < dim, got split {split} for dim {dim} (dim 1: ElementwiseAffine)."
            )
        n_transformed = split if transform_first else dim - split
        super().__init__(
            dim - n_transformed,
            context_dim,
            n_transformed,
            hidden_sizes,
            log_scale_bound,
            activation_fn,
            layer_norm,
            zero_init,
            fused,
            projected,
        )
        self.split = split
        self.transform_first = transform_first

    def _halves(self, x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        first, second = x[..., : self.split], x[..., self.split :]
        return (first, second) if self.transform_first else (second, first)

    def _join(self, transformed: th.Tensor, conditioning: th.Tensor) -> th.Tensor:
        parts = (transformed, conditioning) if self.transform_first else (conditioning, transformed)
        return th.cat(parts, dim=-1)

    def _scale_shift(self, conditioning: th.Tensor, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self._bounded_scale_shift(conditioning, context)

    def forward_halves(
        self, transformed: th.Tensor, conditioning: th.Tensor, context: th.Tensor, with_log_det: bool = True
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """
        The layer on a vector already cut into its halves (a flow keeps them apart between layers,
        which saves a slice and a concatenation per layer).

        :param transformed: ``x_T``, shape ``(B, D_T)``.
        :param conditioning: ``x_C``, shape ``(B, D - D_T)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``y_T`` of shape ``(B, D_T)`` and ``log|det dy/dx|`` of shape ``(B,)``.
        """
        log_scale, shift = self._scale_shift(conditioning, context)
        return th.addcmul(shift, transformed, th.exp(log_scale)), log_scale.sum(dim=-1) if with_log_det else None

    def inverse_halves(
        self, transformed: th.Tensor, conditioning: th.Tensor, context: th.Tensor, with_log_det: bool = True
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """
        Inverse of :meth:`forward_halves`.

        :param transformed: ``y_T``, shape ``(B, D_T)``.
        :param conditioning: ``y_C = x_C``, shape ``(B, D - D_T)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``x_T`` of shape ``(B, D_T)`` and ``log|det dx/dy|`` of shape ``(B,)``.
        """
        log_scale, shift = self._scale_shift(conditioning, context)
        return (transformed - shift) * th.exp(-log_scale), -log_scale.sum(dim=-1) if with_log_det else None

    def forward(self, x: th.Tensor, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        :param x: Input, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :return: ``y`` of shape ``(B, D)`` and ``log|det dy/dx|`` of shape ``(B,)``.
        """
        transformed, conditioning = self._halves(x)
        y_transformed, log_det = self.forward_halves(transformed, conditioning, context)
        return self._join(y_transformed, conditioning), log_det

    def inverse(self, y: th.Tensor, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        :param y: Output of :meth:`forward`, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :return: ``x`` of shape ``(B, D)`` and ``log|det dx/dy|`` of shape ``(B,)``.
        """
        transformed, conditioning = self._halves(y)
        x_transformed, log_det = self.inverse_halves(transformed, conditioning, context)
        return self._join(x_transformed, conditioning), log_det


class ElementwiseAffine(_AffineParameters):
    """
    The layer of a one-dimensional flow: ``y = x * exp(s(c)) + t(c)``, the scale and shift read
    from the observation embedding ``c`` alone (one coordinate cannot be cut into halves that
    condition each other). Same networks, bound and options as :class:`AffineCoupling`.

    :param context_dim: Dimension ``C`` of the observation embedding.
    :param hidden_sizes: Hidden layer sizes of the ``s`` and ``t`` networks.
    :param log_scale_bound: Soft bound ``|s| < bound`` on the log-scale.
    :param activation_fn: Hidden activation of the ``s`` and ``t`` networks.
    :param layer_norm: LayerNorm after every hidden layer of the ``s`` and ``t`` networks.
    :param zero_init: Start as the identity (last layers initialised to zero).
    :param fused: One network emits both ``s`` and ``t``.
    :param projected: The networks' first layers are the flow's context projection: the
        ``context`` argument of every method is then this layer's slice of it.
    """

    def __init__(
        self,
        context_dim: int,
        hidden_sizes: list[int],
        log_scale_bound: float,
        activation_fn: type[nn.Module] = nn.Tanh,
        layer_norm: bool = False,
        zero_init: bool = False,
        fused: bool = False,
        projected: bool = False,
    ) -> None:
        super().__init__(
            0, context_dim, 1, hidden_sizes, log_scale_bound, activation_fn, layer_norm, zero_init, fused, projected
        )

    def forward(self, x: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param x: Input, shape ``(B, 1)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``y`` of shape ``(B, 1)`` and ``log|det dy/dx|`` of shape ``(B,)``.
        """
        log_scale, shift = self._bounded_scale_shift(None, context)
        return th.addcmul(shift, x, th.exp(log_scale)), log_scale.sum(dim=-1) if with_log_det else None

    def inverse(self, y: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param y: Output of :meth:`forward`, shape ``(B, 1)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``x`` of shape ``(B, 1)`` and ``log|det dx/dy|`` of shape ``(B,)``.
        """
        log_scale, shift = self._bounded_scale_shift(None, context)
        return (y - shift) * th.exp(-log_scale), -log_scale.sum(dim=-1) if with_log_det else None


class ConditionalGaussian(nn.Module):
    """
    State-conditioned element-wise affine layer ``y = mu(c) + exp(log_sigma(c)) * x``.

    ``mu`` and ``log_sigma`` are one Linear map of the embedding, and ``log_sigma`` is clamped to
    ``[LOG_STD_MIN, LOG_STD_MAX]`` as SB3 clamps a Gaussian actor's ``log_std``. As the first
    layer of a flow over ``h ~ N(0, I)`` it makes ``y`` exactly SB3's diagonal Gaussian with that
    mean and std; identity-started coupling layers after it can only add to that distribution.

    :param dim: Dimension ``D`` of the vector.
    :param context_dim: Dimension ``C`` of the observation embedding.
    :param projected: ``[mu, log_sigma]`` is the layer's slice of the flow's context projection:
        the ``context`` argument of every method is then that slice, shape ``(B, 2 D)``.
    """

    def __init__(self, dim: int, context_dim: int, projected: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.projected = projected
        #: With ``projected``: the width of this layer's slice of the context projection.
        self.context_width = 2 * dim if projected else 0
        if not projected:
            self.mean_log_std = nn.Linear(context_dim, 2 * dim)

    def _mean_log_std(self, context: th.Tensor) -> th.Tensor:
        return context if self.projected else self.mean_log_std(context)

    def mean_and_log_std(self, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        :param context: Observation embedding, shape ``(B, C)`` (with ``projected``, its slice of the projection).
        :return: ``mu`` and the clamped ``log_sigma``, each of shape ``(B, D)``.
        """
        mean, log_std = self._mean_log_std(context).split(self.dim, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, x: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param x: Input, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``y`` of shape ``(B, D)`` and ``log|det dy/dx|`` of shape ``(B,)``.
        """
        mean, log_std = self.mean_and_log_std(context)
        return th.addcmul(mean, th.exp(log_std), x), log_std.sum(dim=-1) if with_log_det else None

    def inverse(self, y: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param y: Output of :meth:`forward`, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``x`` of shape ``(B, D)`` and ``log|det dx/dy|`` of shape ``(B,)``.
        """
        mean, log_std = self.mean_and_log_std(context)
        return (y - mean) * th.exp(-log_std), -log_std.sum(dim=-1) if with_log_det else None

    def mode(self, context: th.Tensor) -> th.Tensor:
        """
        :param context: Observation embedding, shape ``(B, C)``.
        :return: ``mu``, the image of ``x = 0``, shape ``(B, D)``.
        """
        return self._mean_log_std(context)[..., : self.dim]


class ConditionalRealNVP(nn.Module):
    """
    Real-NVP bijection ``u = f(h; context)`` from K affine coupling layers.

    For ``D >= 2`` the layers alternate between transforming the first ``D // 2`` coordinates
    (conditioned on the rest) and the remaining ones (conditioned on the first half), so two
    consecutive layers touch every coordinate. For ``D == 1`` there are no halves: the K layers
    are :class:`ElementwiseAffine`, each a scale and shift computed from the embedding alone.

    With ``gaussian_base`` a :class:`ConditionalGaussian` layer comes first (``layers[0]``),
    then the K coupling layers.

    With ``context_projection`` one Linear map of the embedding gives every layer's use of it at
    once: the Gaussian layer's ``[mu, log_sigma]`` and, for each ``s``/``t`` network, the context
    part of its first layer (with its bias). It is the same function as without, in fewer and
    larger operations: one matrix product instead of one per layer, and no concatenation of each
    conditioning half with the embedding (:class:`ProjectedMLP`).

    :param dim: Dimension ``D`` of ``h`` and ``u``.
    :param context_dim: Dimension ``C`` of the observation embedding.
    :param n_layers: Number of coupling layers ``K`` (``K = 0`` with ``gaussian_base``: the Gaussian layer alone).
    :param hidden_sizes: Hidden layer sizes of each ``s`` and ``t`` network.
    :param log_scale_bound: Soft bound on each layer's log-scale.
    :param activation_fn: Hidden activation of the ``s`` and ``t`` networks.
    :param layer_norm: LayerNorm in the ``s`` and ``t`` networks.
    :param zero_init: Coupling layers start as the identity.
    :param fused: One network per coupling layer emits both ``s`` and ``t``.
    :param gaussian_base: Start with a state-conditioned element-wise affine (Gaussian) layer.
    :param context_projection: Compute every layer's context input in one projection.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        n_layers: int,
        hidden_sizes: list[int],
        log_scale_bound: float,
        activation_fn: type[nn.Module] = nn.Tanh,
        layer_norm: bool = False,
        zero_init: bool = False,
        fused: bool = False,
        gaussian_base: bool = False,
        context_projection: bool = False,
    ) -> None:
        super().__init__()
        options = dict(
            hidden_sizes=hidden_sizes,
            log_scale_bound=log_scale_bound,
            activation_fn=activation_fn,
            layer_norm=layer_norm,
            zero_init=zero_init,
            fused=fused,
            projected=context_projection,
        )
        self.dim = dim
        self.split = dim // 2
        couplings: list[AffineCoupling] | list[ElementwiseAffine]
        if dim == 1:
            couplings = [ElementwiseAffine(context_dim, **options) for _ in range(n_layers)]
        else:
            couplings = [
                AffineCoupling(dim, context_dim, transform_first=k % 2 == 0, split=self.split, **options)
                for k in range(n_layers)
            ]
        base = [ConditionalGaussian(dim, context_dim, projected=context_projection)] if gaussian_base else []
        self.layers = nn.ModuleList(base + couplings)
        self.gaussian_base = gaussian_base
        # A plain tuple (not registered twice): the loops below skip the Gaussian layer without
        # building a new ModuleList per call.
        self._couplings = tuple(couplings)
        self._context_widths = [layer.context_width for layer in self.layers]
        self.context_projection = nn.Linear(context_dim, sum(self._context_widths)) if context_projection else None
        if self.context_projection is not None:
            self._init_context_projection()

    @th.no_grad()
    def _init_context_projection(self) -> None:
        """Each coupling network's rows as ``nn.Linear`` initialises its first layer without the projection
        (uniform in ``+-1 / sqrt(fan_in)``, zero where that layer is the zero-initialised last one); the
        Gaussian layer's rows keep ``nn.Linear``'s own initialisation, which is the same as without."""
        assert self.context_projection is not None
        rows = self.context_projection.weight.split(self._context_widths)
        biases = self.context_projection.bias.split(self._context_widths)
        for layer, layer_rows, layer_bias in zip(self.layers, rows, biases, strict=True):
            if isinstance(layer, ConditionalGaussian):
                continue
            nets = [net for net in layer.children() if isinstance(net, ProjectedMLP)]
            for net, net_rows, net_bias in zip(
                nets, layer_rows.split(layer.context_widths), layer_bias.split(layer.context_widths), strict=True
            ):
                net_rows.uniform_(-net.init_bound, net.init_bound)
                net_bias.uniform_(-net.init_bound, net.init_bound)

    def _layer_contexts(self, context: th.Tensor) -> tuple[th.Tensor, ...]:
        """What each layer reads, aligned with ``layers``: the embedding, or its slice of the projection."""
        if self.context_projection is None:
            return (context,) * len(self.layers)
        return self.context_projection(context).split(self._context_widths, dim=-1)

    def base_mean_and_log_std(self, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The Gaussian first layer's ``mu`` and clamped ``log_sigma`` (``gaussian_base`` only).

        :param context: Observation embedding, shape ``(B, C)``.
        :return: ``mu`` and ``log_sigma``, each of shape ``(B, D)``.
        """
        if not self.gaussian_base:
            raise ValueError("This flow has no Gaussian first layer: build it with gaussian_base=True.")
        return self.layers[0].mean_and_log_std(self._layer_contexts(context)[0])

    def _couple(
        self, u: th.Tensor, contexts: tuple[th.Tensor, ...], log_det: th.Tensor | None, with_log_det: bool
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """The coupling layers in order, on the two halves kept apart from the first layer to the last."""
        contexts = contexts[1:] if self.gaussian_base else contexts
        if not self._couplings:  # the Gaussian layer alone: no halves to cut and join again
            return u, log_det
        if self.dim == 1:
            for layer, context in zip(self._couplings, contexts, strict=True):
                u, layer_log_det = layer(u, context, with_log_det)
                log_det = _add_log_det(log_det, layer_log_det)
            return u, log_det
        first, second = u[..., : self.split], u[..., self.split :]
        for layer, context in zip(self._couplings, contexts, strict=True):
            if layer.transform_first:
                first, layer_log_det = layer.forward_halves(first, second, context, with_log_det)
            else:
                second, layer_log_det = layer.forward_halves(second, first, context, with_log_det)
            log_det = _add_log_det(log_det, layer_log_det)
        return th.cat((first, second), dim=-1), log_det

    def _uncouple(
        self, u: th.Tensor, contexts: tuple[th.Tensor, ...], with_log_det: bool
    ) -> tuple[th.Tensor, th.Tensor | None]:
        """Inverse of :meth:`_couple`: the coupling layers in reverse order."""
        contexts = contexts[1:] if self.gaussian_base else contexts
        log_det = None
        if not self._couplings:
            return u, log_det
        if self.dim == 1:
            for layer, context in zip(reversed(self._couplings), reversed(contexts), strict=True):
                u, layer_log_det = layer.inverse(u, context, with_log_det)
                log_det = _add_log_det(log_det, layer_log_det)
            return u, log_det
        first, second = u[..., : self.split], u[..., self.split :]
        for layer, context in zip(reversed(self._couplings), reversed(contexts), strict=True):
            if layer.transform_first:
                first, layer_log_det = layer.inverse_halves(first, second, context, with_log_det)
            else:
                second, layer_log_det = layer.inverse_halves(second, first, context, with_log_det)
            log_det = _add_log_det(log_det, layer_log_det)
        return th.cat((first, second), dim=-1), log_det

    def forward(self, h: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param h: Latent, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it;
            acting needs only ``u``, and at batch 1 every op skipped is time saved).
        :return: ``u`` of shape ``(B, D)`` and ``log|det du/dh|`` of shape ``(B,)``.
        """
        contexts = self._layer_contexts(context)
        log_det = None
        if self.gaussian_base:
            h, log_det = self.layers[0](h, contexts[0], with_log_det)
        u, log_det = self._couple(h, contexts, log_det, with_log_det)
        if with_log_det and log_det is None:  # no layer at all
            log_det = h.new_zeros(h.shape[:-1])
        return u, log_det

    def mode(self, context: th.Tensor) -> th.Tensor:
        """
        ``f(0; context)``, the image of the latent's mode (the deterministic action before tanh).

        :param context: Observation embedding, shape ``(B, C)``.
        :return: ``u``, shape ``(B, D)``.
        """
        contexts = self._layer_contexts(context)
        if self.gaussian_base:
            u = self.layers[0].mode(contexts[0])
        else:
            u = context.new_zeros((*context.shape[:-1], self.dim))
        return self._couple(u, contexts, None, with_log_det=False)[0]

    def inverse(self, u: th.Tensor, context: th.Tensor, with_log_det: bool = True) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param u: Flow output, shape ``(B, D)``.
        :param context: Observation embedding, shape ``(B, C)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :return: ``h`` of shape ``(B, D)`` and ``log|det dh/du|`` of shape ``(B,)``.
        """
        contexts = self._layer_contexts(context)
        h, log_det = self._uncouple(u, contexts, with_log_det)
        if self.gaussian_base:
            h, base_log_det = self.layers[0].inverse(h, contexts[0], with_log_det)
            log_det = _add_log_det(log_det, base_log_det)
        if with_log_det and log_det is None:  # no layer at all
            log_det = u.new_zeros(u.shape[:-1])
        return h, log_det


def _add_log_det(total: th.Tensor | None, term: th.Tensor | None) -> th.Tensor | None:
    """Sum of log-determinants, ``None`` standing for "not computed" (and for 0 before the first)."""
    if term is None:
        return total
    return term if total is None else total + term


class TanhSquash:
    """
    ``a = tanh(u)``, mapping the real line onto the open action box ``(-1, 1)``: the one place
    where the actor squashes (named apart from SB3's ``TanhBijector``).

    With ``epsilon = 0`` (the default) ``log(1 - tanh(u)^2)`` is exact, computed as
    ``2 * (log 2 - u - softplus(-2u))``, finite for every float ``u``. With ``epsilon > 0`` it is
    ``log(1 - tanh(u)^2 + epsilon)``, as SB3's ``SquashedDiagGaussianDistribution`` and the
    authors' code compute it with ``epsilon = 1e-6``: the log-determinant then stops falling at
    ``log(epsilon)`` per coordinate, so a saturated action is no longer pulled back by the entropy
    term (``d/du log(1 - tanh(u)^2) -> -2 sign(u)`` exactly, but ``-> 0`` with the epsilon), and the
    density integrates to slightly less than 1.
    """

    @staticmethod
    def log_abs_det_jacobian(u: th.Tensor, epsilon: float = 0.0) -> th.Tensor:
        """
        :param u: Pre-squash values, shape ``(B, D)``.
        :param epsilon: Added inside the log (0: exact).
        :return: ``log|det da/du|``, shape ``(B,)``.
        """
        if epsilon:
            return th.log(1.0 - th.tanh(u) ** 2 + epsilon).sum(dim=-1)
        return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=-1)

    @staticmethod
    def forward(u: th.Tensor, with_log_det: bool = True, epsilon: float = 0.0) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param u: Pre-squash values, shape ``(B, D)``.
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :param epsilon: Added inside the log of the log-determinant (0: exact).
        :return: ``a = tanh(u)`` of shape ``(B, D)`` and ``log|det da/du|`` of shape ``(B,)``.
        """
        return th.tanh(u), TanhSquash.log_abs_det_jacobian(u, epsilon) if with_log_det else None

    @staticmethod
    def squashed_normal_log_prob(h: th.Tensor, u: th.Tensor, flow_log_det: th.Tensor, epsilon: float = 0.0) -> th.Tensor:
        """
        ``log pi(a) = log N(h; 0, I) - log|det du/dh| - log|det da/du|`` for ``a = tanh(u)``, ``u = f(h)``.

        Exact (``epsilon = 0``): one pass over the coordinates, ``sum(2 (u + softplus(-2u)) - h^2 / 2)``,
        then the constants ``D (log(2 pi) / 2 + 2 log 2)``: the same value as
        :func:`standard_normal_log_prob` and :meth:`log_abs_det_jacobian` apart, in 7 ops instead
        of 12 (each with its backward).

        :param h: Latents, shape ``(B, D)``.
        :param u: Their image under the flow, shape ``(B, D)``.
        :param flow_log_det: ``log|det du/dh|``, shape ``(B,)``.
        :param epsilon: Added inside the log of the squash's log-determinant (0: exact).
        :return: ``log pi(a)``, shape ``(B,)``.
        """
        if epsilon:
            return standard_normal_log_prob(h) - flow_log_det - TanhSquash.log_abs_det_jacobian(u, epsilon)
        per_coordinate = th.addcmul(u + F.softplus(-2.0 * u), h, h, value=-0.25)
        constant = h.shape[-1] * (0.5 * math.log(2.0 * math.pi) + 2.0 * math.log(2.0))
        return th.add(th.rsub(flow_log_det, -constant), per_coordinate.sum(dim=-1), alpha=2.0)

    @staticmethod
    def clipped_atanh(a: th.Tensor) -> th.Tensor:
        """
        ``u = atanh(a)``, actions on or beyond the box edges first clipped to the largest float
        strictly inside ``(-1, 1)``, so ``u`` stays finite.

        :param a: Actions, shape ``(B, D)``.
        :return: ``u``, shape ``(B, D)``.
        """
        edge = 1.0 - th.finfo(a.dtype).eps
        return th.atanh(a.clamp(-edge, edge))

    @staticmethod
    def inverse(a: th.Tensor, with_log_det: bool = True, epsilon: float = 0.0) -> tuple[th.Tensor, th.Tensor | None]:
        """
        :param a: Actions, shape ``(B, D)`` (clipped as by :meth:`clipped_atanh`).
        :param with_log_det: Compute the log-determinant (otherwise ``None`` is returned for it).
        :param epsilon: Added inside the log of the log-determinant (0: exact). It is then
            ``-log(1 - a^2 + epsilon)`` of the action as given, as SB3 computes it, so that an action
            on the box edge gets ``-log(epsilon)``.
        :return: ``u = atanh(a)`` of shape ``(B, D)`` and ``log|det du/da|`` of shape ``(B,)``.
        """
        u = TanhSquash.clipped_atanh(a)
        if not with_log_det:
            return u, None
        if epsilon:
            return u, -th.log(1.0 - a**2 + epsilon).sum(dim=-1)
        return u, -TanhSquash.log_abs_det_jacobian(u)


def __getattr__(name: str) -> type:
    # Release 0.1.0's name, which clashed with SB3's TanhBijector
    if name == "TanhBijector":
        warnings.warn(
            "sb3_lsp.flows.TanhBijector is now TanhSquash; the old name will be removed.", DeprecationWarning, stacklevel=2
        )
        return TanhSquash
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def standard_normal_log_prob(h: th.Tensor) -> th.Tensor:
    """
    :param h: Points, shape ``(B, D)``.
    :return: ``log N(h; 0, I)``, shape ``(B,)``.
    """
    return -0.5 * (h.pow(2).sum(dim=-1) + h.shape[-1] * math.log(2.0 * math.pi))
