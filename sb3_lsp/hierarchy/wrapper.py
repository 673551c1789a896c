"""``LatentActionWrapper``: a frozen lower level becomes part of the environment (paper, algorithm 1)."""

from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_lsp.checks import finite_number, positive_int
from sb3_lsp.hierarchy.levels import FrozenLevel, LevelSource, LowerObs

#: Default latent box half-width: +-3 standard deviations of the N(0, I) prior per coordinate.
DEFAULT_LATENT_BOUND = 3.0


def picks_new_action(steps: int | np.ndarray, period: int) -> bool | np.ndarray:
    """
    The hold schedule, the one rule both :class:`LatentActionWrapper` and ``HierarchicalPolicy``
    follow: a level that is held for ``period`` inner steps picks a new action when the inner steps
    taken since it last picked (or since the episode began) are a multiple of ``period``. An episode
    that ends starts the count again.

    :param steps: Inner steps since the episode began (an int, or one per environment).
    :param period: Inner steps per action of the level.
    :return: Whether the level picks a new action at that step.
    """
    return steps % period == 0


class LatentActionWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    Embed a frozen latent-space policy into an environment, so the next level acts in its latent space.

    ``step(h)`` applies the lower level's deterministic map ``a = tanh(f(h; s))`` (rescaled to the
    inner environment's action box) to the inner environment, reading the current observation at
    every inner step (closed loop). Since ``f`` is a bijection for every ``s``, the level above can
    produce any action the inner environment accepts: it can steer and even undo the lower level.

    The action space is ``Box(-B, B, (dim h,))``: SB3's off-policy algorithms need finite bounds.
    The default ``B = 3`` covers +-3 standard deviations of the lower level's N(0, I) prior in
    every coordinate (99.7 % of its mass per coordinate).

    **Action prior.** With ``action_prior="gaussian"`` the reward gains
    ``prior_coef * log N(h; 0, I)``, up to its constant, i.e. ``-prior_coef * ||h||^2 / 2`` once
    per (held) action. A maximum-entropy learner then maximises
    ``E[r + prior_coef * log p(h) - alpha * log pi(h|s)]``, which for ``prior_coef = alpha = 1`` is
    ``E[r] - KL(pi(.|s) || N(0, I))``: the paper's objective for higher levels (appendix A.2),
    where the entropy bonus becomes a KL to the Gaussian prior. SB3 learns ``alpha``; the prior
    coefficient is fixed, so the prior term is weighted ``prior_coef`` against the reward.
    ``"uniform"`` adds nothing (plain maximum entropy over the latent box).

    Wrapping a wrapped environment stacks levels: ``LatentActionWrapper(LatentActionWrapper(env,
    level0), level1)`` is the environment of level 2.

    :param env: The environment the lower level acts in (its action space a ``Box``).
    :param lower: The lower level: a path to an SB3 ``.zip``, an RL Zoo run folder
        (``logs/<algo>/<env>_<id>/``; the run's VecNormalize statistics are applied, frozen, when it
        normalized observations), or a loaded model or policy. It must be a latent-space policy.
    :param latent_bound: Half-width ``B`` of the latent action box.
    :param action_repeat: Inner steps each latent is held for (the paper's control interval);
        rewards are summed, and the repeat stops early on termination or truncation.
    :param action_prior: ``"gaussian"`` or ``"uniform"`` (see above).
    :param prior_coef: Weight of ``log N(h; 0, I)`` in the reward with the gaussian prior.
    :param lower_obs: What the lower level sees: the whole observation (None), its first N
        entries (int; e.g. the proprioception D_s, as in the 2018 code) or the given indices.
    :param device: Torch device of the frozen lower level.
    """

    action_space: spaces.Box

    def __init__(
        self,
        env: gym.Env,
        lower: LevelSource,
        *,
        latent_bound: float = DEFAULT_LATENT_BOUND,
        action_repeat: int = 1,
        action_prior: Literal["gaussian", "uniform"] = "gaussian",
        prior_coef: float = 1.0,
        lower_obs: LowerObs = None,
        device: str = "cpu",
    ) -> None:
        # Recorded so that gymnasium can re-create the wrapped environment from its spec.
        gym.utils.RecordConstructorArgs.__init__(
            self,
            lower=lower,
            latent_bound=latent_bound,
            action_repeat=action_repeat,
            action_prior=action_prior,
            prior_coef=prior_coef,
            lower_obs=lower_obs,
            device=device,
        )
        gym.Wrapper.__init__(self, env)
        latent_bound = finite_number("latent_bound", latent_bound, positive=True)
        action_repeat = positive_int("action_repeat", action_repeat)
        prior_coef = finite_number("prior_coef", prior_coef, non_negative=True)
        if action_prior not in ("gaussian", "uniform"):
            raise ValueError(f"action_prior must be 'gaussian' or 'uniform', got {action_prior!r}.")
        env_name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        if not isinstance(env.action_space, spaces.Box):
            raise ValueError(f"{env_name} has action space {env.action_space}; a latent-space lower level needs a Box.")

        self.lower = FrozenLevel.load(lower, lower_obs=lower_obs, device=device)
        actor = self.lower.actor  # raises a clear TypeError when the level is not a latent-space policy
        self.lower.check_observation_space(env.observation_space, env_name)
        if env.action_space.shape != (actor.action_dim,):
            raise ValueError(
                f"Action shape mismatch: the lower level {self.lower.source} outputs actions of shape "
                f"({actor.action_dim},), but {env_name} takes actions of shape {env.action_space.shape}."
            )
        trained_for = self.lower.action_space
        if not (np.allclose(env.action_space.low, trained_for.low) and np.allclose(env.action_space.high, trained_for.high)):
            raise ValueError(
                f"Action bounds mismatch: the lower level {self.lower.source} was trained for actions in "
                f"[{trained_for.low}, {trained_for.high}], but {env_name} takes actions in "
                f"[{env.action_space.low}, {env.action_space.high}]. Embed it in the environment it was trained on."
            )

        self.latent_bound = latent_bound
        self.action_repeat = action_repeat
        self.action_prior = action_prior
        self.prior_coef = prior_coef
        self.action_space = spaces.Box(-self.latent_bound, self.latent_bound, (actor.action_dim,), np.float32)
        self._last_obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        return obs, info

    def latent_to_env_action(self, obs: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """
        :param obs: One observation of the inner environment.
        :param latent: One latent ``h``, shape ``(dim h,)``.
        :return: The inner environment's action the lower level takes for ``h``.
        """
        action = self.lower.latent_to_action(obs[None], latent[None])[0]
        return action.astype(self.env.action_space.dtype)

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._last_obs is None:
            raise RuntimeError("Call reset() before step().")
        latent = np.asarray(action, dtype=np.float32).reshape(self.action_space.shape)
        if not np.all(np.isfinite(latent)):
            raise ValueError(
                f"LatentActionWrapper.step got a non-finite latent {latent}: the lower level would act on NaN. "
                "The level above produced it; check its policy and observations."
            )
        latent = np.clip(latent, -self.latent_bound, self.latent_bound)
        total_reward, inner_steps = 0.0, 0
        while True:  # hold the latent until the level above decides again or the episode ends
            env_action = self.latent_to_env_action(self._last_obs, latent)
            obs, reward, terminated, truncated, info = self.env.step(env_action)
            self._last_obs = obs
            total_reward += float(reward)
            inner_steps += 1
            if terminated or truncated or picks_new_action(inner_steps, self.action_repeat):
                break
        info = dict(info, inner_steps=inner_steps)
        if self.action_prior == "gaussian":
            prior_reward = -0.5 * self.prior_coef * float(np.sum(np.square(latent, dtype=np.float64)))
            info["prior_reward"] = prior_reward
            total_reward += prior_reward
        return obs, total_reward, terminated, truncated, info
