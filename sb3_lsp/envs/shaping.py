"""Reward shaping from what an environment reports in ``info``."""

from typing import Any, SupportsFloat

import gymnasium as gym


class InfoReward(gym.Wrapper):
    """
    Add weighted ``info`` entries to the reward, e.g. the any-direction motion terms that the maze
    environments report (``reward_speed``, ``reward_survive``, ``reward_ctrl``, and the Ant's
    ``reward_contact``): the shaped single-level baselines of the paper's maze comparison.
    In RL Zoo YAML: ``env_wrapper: [{sb3_lsp.InfoReward: {terms: {reward_speed: 1.0}}}]``.

    :param env: The environment.
    :param terms: ``{info key: weight}``; the reward becomes ``r + sum(weight * info[key])``.
    """

    def __init__(self, env: gym.Env, terms: dict[str, float]) -> None:
        super().__init__(env)
        self.terms = terms

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        missing = [key for key in self.terms if key not in info]
        if missing:
            raise KeyError(f"InfoReward terms {missing} are not in the environment's info (it has {sorted(info)}).")
        shaping = sum(weight * float(info[key]) for key, weight in self.terms.items())
        return obs, float(reward) + shaping, terminated, truncated, info
