"""Pictures for debugging a policy: the action density of a 2-D latent-space policy at one observation."""

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch as th
from matplotlib.axes import Axes
from sb3_contrib.tqc.policies import Actor as TQCActor
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.sac.policies import Actor as SACActor

from sb3_lsp.policies import LSPActor


def _log_prob(actor: BasePolicy, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """``log pi(a | s)`` of a flow actor, or of SB3's squashed Gaussian actor (SAC and TQC MlpPolicy)."""
    if isinstance(actor, LSPActor):
        return actor.log_prob(obs, actions)
    mean, log_std, _ = actor.get_action_dist_params(obs)
    return SquashedDiagGaussianDistribution(actions.shape[-1]).proba_distribution(mean, log_std).log_prob(actions)


def action_density(model: BaseAlgorithm | LSPActor, observation: Any, resolution: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """
    The policy's exact density ``pi(a | s)`` on a grid over a 2-D action box.

    :param model: A SAC or TQC model with an LSPPolicy (or, to compare, SB3's Gaussian
        MlpPolicy), or its actor.
    :param observation: One observation (as ``model.predict`` takes it, without a batch axis).
    :param resolution: Grid points per action axis.
    :return: The grid's axes in the environment's action units, shape ``(resolution, 2)``
        (column 0 for the first action entry), and the density there, shape
        ``(resolution, resolution)`` indexed ``[second entry, first entry]``, per unit area of
        the squashed box ``[-1, 1]^2``.
    """
    actor = model.actor if isinstance(model, BaseAlgorithm) else model
    if not isinstance(actor, (LSPActor, SACActor, TQCActor)) or getattr(actor, "use_sde", False):
        raise ValueError(
            "action_density needs the actor of SAC or TQC with 'LSPPolicy' (or SB3's squashed Gaussian 'MlpPolicy' "
            f"without gSDE), got {type(actor).__name__}."
        )
    if actor.action_space.shape != (2,):
        shape = actor.action_space.shape
        raise ValueError(f"action_density plots 2-D action spaces; this policy's actions have shape {shape}.")
    # Cell centres: the density is finite strictly inside the box.
    squashed = (np.arange(resolution) + 0.5) / resolution * 2.0 - 1.0
    first, second = np.meshgrid(squashed, squashed)
    actions = th.as_tensor(np.stack([first.ravel(), second.ravel()], axis=1), dtype=th.float32, device=actor.device)
    obs_tensor, _ = actor.obs_to_tensor(observation)
    with th.no_grad():
        obs_batch = obs_tensor.expand(actions.shape[0], *obs_tensor.shape[1:])
        density = _log_prob(actor, obs_batch, actions).exp().cpu().numpy().reshape(resolution, resolution)
    low, high = actor.action_space.low, actor.action_space.high
    axes = low + (np.stack([squashed, squashed], axis=1) + 1.0) * 0.5 * (high - low)
    return axes, density


def plot_action_density(
    model: BaseAlgorithm | LSPActor, observation: Any, ax: Axes | None = None, resolution: int = 201, **imshow_kwargs: Any
) -> Axes:
    """
    Plot :func:`action_density` as an image over the action box, in the environment's units.

    :param model: A SAC or TQC model (LSPPolicy or MlpPolicy), or its actor.
    :param observation: One observation (no batch axis).
    :param ax: Axes to draw on (default: a new figure's).
    :param resolution: Grid points per action axis.
    :param imshow_kwargs: Passed to ``Axes.imshow`` (for example ``cmap``).
    :return: The axes.
    """
    axes, density = action_density(model, observation, resolution)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    extent = (axes[0, 0], axes[-1, 0], axes[0, 1], axes[-1, 1])
    image = ax.imshow(density, origin="lower", extent=extent, aspect="auto", **{"cmap": "viridis", **imshow_kwargs})
    ax.figure.colorbar(image, ax=ax, label="pi(a | s)")
    ax.set_xlabel("action[0]")
    ax.set_ylabel("action[1]")
    return ax
