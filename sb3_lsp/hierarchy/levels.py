"""Frozen levels of a hierarchy: loading a saved model, what it observes, how it maps latents to actions."""

import copy
import json
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecNormalize

from sb3_lsp.policies import LSPActor

#: What a level can be given as: a path to an SB3 ``.zip``, an RL Zoo run folder, or a loaded model/policy.
LevelSource = str | Path | BaseAlgorithm | BasePolicy
#: What a lower level sees: all of the observation (None), its first N entries (int) or the given indices.
LowerObs = int | Sequence[int] | None


def find_zoo_run_files(folder: Path) -> tuple[Path, Path | None]:
    """
    The model and (if the run normalized observations) the VecNormalize statistics of an RL Zoo run
    folder ``<log folder>/<algo>/<env>_<id>/``, found by rl_zoo3's own loaders: ``get_model_path``
    (the final ``<env>.zip``, else ``best_model.zip``) and ``get_saved_hyperparams`` (``normalize``).
    """
    from rl_zoo3.utils import EnvironmentName, get_model_path, get_saved_hyperparams  # rl_zoo3 wrote the folder

    env_name, _, run_id = folder.name.rpartition("_")
    if env_name and run_id.isdigit() and int(run_id) > 0:
        for load_best in (False, True):
            try:
                _, model_path, log_path = get_model_path(
                    int(run_id), str(folder.parent.parent), folder.parent.name, EnvironmentName(env_name), load_best
                )
            except (AssertionError, ValueError):  # rl_zoo3's ways of saying "no such model"
                continue
            saved, stats_folder = get_saved_hyperparams(str(Path(log_path) / env_name))
            stats = Path(stats_folder) / "vecnormalize.pkl" if saved.get("normalize") and stats_folder else None
            return Path(model_path), stats
    raise FileNotFoundError(
        f"{folder} is not an RL Zoo run folder: expected <log folder>/<algo>/<env>_<id>/ holding <env>.zip (or "
        "best_model.zip), as `python -m rl_zoo3.train` writes them. Pass the run folder itself or the path of a model .zip."
    )


def saved_num_timesteps(path: Path) -> int:
    """
    The steps an SB3 model ``.zip`` was trained for, read from its ``data`` entry alone (loading
    the whole model, weights and optimizer states, only to read one number took seconds for big ones).

    :raises ValueError: When the file is not a model saved by SB3.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a model saved by SB3 ({type(error).__name__}: {error}).") from None


def _load_policy_from_zip(path: Path, device: str) -> BasePolicy:
    """Rebuild the policy stored in an SB3 model ``.zip``, whatever algorithm saved it."""
    try:
        data, params, _ = load_from_zip_file(path, device=device)
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError, RuntimeError) as error:
        raise ValueError(
            f"{path} is not a readable SB3 model .zip ({type(error).__name__}: {error}): the file is truncated or "
            "corrupt. Retrain the level or restore the file."
        ) from error
    if data is None or params is None or "policy" not in params:
        raise ValueError(f"{path} holds no SB3 model (its 'data' or 'policy.pth' is missing): it is truncated or corrupt.")
    policy_kwargs = dict(data.get("policy_kwargs", {}))
    if data.get("use_sde"):
        policy_kwargs.setdefault("use_sde", True)  # on-policy algorithms pass it outside policy_kwargs
    policy: BasePolicy = data["policy_class"](data["observation_space"], data["action_space"], lambda _: 0.0, **policy_kwargs)
    policy.load_state_dict(params["policy"])
    return policy  # moved to the device by FrozenLevel.load, with every other source


class FrozenLevel:
    """
    One trained level, frozen: evaluation mode, no gradients, never updated.

    :param policy: The level's SB3 policy.
    :param obs_normalizer: Frozen VecNormalize statistics applied to what the level sees (RL Zoo
        ``normalize: true`` runs), or None.
    :param lower_obs: What the level sees of the environment's observation: all of it (None),
        the first N entries (an int, like the 2018 code's proprioception D_s) or the given indices.
    :param source: Where the level came from, for error messages.
    """

    def __init__(
        self,
        policy: BasePolicy,
        obs_normalizer: VecNormalize | None = None,
        lower_obs: LowerObs = None,
        source: str = "the given model",
    ) -> None:
        self.policy = policy
        self.policy.set_training_mode(False)
        self.policy.requires_grad_(False)
        self.obs_normalizer = obs_normalizer
        if obs_normalizer is not None:
            obs_normalizer.training = False
        self.lower_obs: int | list[int] | None = (
            lower_obs if lower_obs is None or isinstance(lower_obs, int) else [int(i) for i in lower_obs]
        )
        self.source = source

    @classmethod
    def load(cls, source: LevelSource, lower_obs: LowerObs = None, device: str = "cpu") -> "FrozenLevel":
        """
        :param source: Path to an SB3 ``.zip``, an RL Zoo run folder (its model and, when the run
            normalized observations, its VecNormalize statistics), or a loaded model or policy.
        :param lower_obs: See the class docstring.
        :param device: Torch device of the frozen policy (CPU by default: one observation at a time).
        """
        obs_normalizer = None
        if isinstance(source, BaseAlgorithm):
            # Frozen copies: the user's model stays trainable, its statistics keep updating.
            policy, name = copy.deepcopy(source.policy), f"a loaded {type(source).__name__}"
            live_normalizer = source.get_vec_normalize_env()
            if live_normalizer is not None:
                obs_normalizer = pickle.loads(pickle.dumps(live_normalizer))
        elif isinstance(source, BasePolicy):
            policy, name = copy.deepcopy(source), f"a loaded {type(source).__name__}"
        else:
            path = Path(source)
            name = str(path)
            if not path.exists():
                raise FileNotFoundError(
                    f"Level {path} does not exist. Pass the path of an SB3 model .zip, an RL Zoo run folder "
                    "(logs/<algo>/<env>_<id>/) or a loaded model."
                )
            if path.is_dir():
                path, stats_path = find_zoo_run_files(path)
                if stats_path is not None:
                    with stats_path.open("rb") as file:
                        obs_normalizer = pickle.load(file)
            policy = _load_policy_from_zip(path, device)
        return cls(policy.to(device), obs_normalizer, lower_obs, name)

    @property
    def is_latent_space_policy(self) -> bool:
        return isinstance(getattr(self.policy, "actor", None), LSPActor)

    @property
    def actor(self) -> LSPActor:
        if not self.is_latent_space_policy:
            raise TypeError(
                f"The level {self.source} has a {type(self.policy).__name__}, not a latent-space policy, so it has "
                "no latent to act in. Lower levels must be trained with policy='LSPPolicy' (SAC or TQC, after "
                "`import sb3_lsp`), whose actions are an invertible function of a latent h; retrain that level "
                "with it (any policy can be the top level)."
            )
        return self.policy.actor  # type: ignore[return-value]

    @property
    def action_space(self) -> spaces.Box:
        return self.policy.action_space  # type: ignore[return-value]

    def observed_shape(self, observation_space: spaces.Space) -> tuple[int, ...]:
        """Shape of what this level sees of observations from ``observation_space``."""
        return self.observe(np.zeros((1, *observation_space.shape), np.float32)).shape[1:]

    def check_observation_space(self, observation_space: spaces.Space, env_name: str) -> None:
        """Raise a ValueError naming both shapes unless this level can read observations of ``observation_space``."""
        expected = self.policy.observation_space.shape
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"{env_name} has observation space {observation_space}; hierarchies need a flat Box.")
        if isinstance(self.lower_obs, int) and not 0 < self.lower_obs <= observation_space.shape[0]:
            raise ValueError(
                f"lower_obs={self.lower_obs} is out of range for {env_name}'s observations of shape {observation_space.shape}."
            )
        seen = self.observed_shape(observation_space)
        if seen != expected:
            can_select = len(expected) == 1 and expected[0] < observation_space.shape[0]
            hint = f" Pass lower_obs={expected[0]} to give it the first {expected[0]} entries." if can_select else ""
            raise ValueError(
                f"Observation shape mismatch: the level {self.source} expects observations of shape {expected}, "
                f"but would see shape {seen} from {env_name} (observation shape {observation_space.shape}, "
                f"lower_obs={self.lower_obs}).{hint}"
            )

    def observe(self, obs: np.ndarray) -> np.ndarray:
        """
        :param obs: Environment observations, shape ``(B, obs_dim)``.
        :return: What the level sees, shape ``(B, level_obs_dim)``: selected, then normalized.
        """
        if isinstance(self.lower_obs, int):
            obs = obs[:, : self.lower_obs]
        elif self.lower_obs is not None:
            obs = obs[:, self.lower_obs]
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer.normalize_obs(obs)
        return obs.astype(np.float32, copy=False)

    def latent_to_action(self, obs: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """
        The level's deterministic map ``a = tanh(f(h; s))``, rescaled from ``[-1, 1]`` to the level's
        action box by SB3's ``unscale_action`` (as its ``predict`` does).

        :param obs: Environment observations, shape ``(B, obs_dim)``.
        :param latent: Latents ``h``, shape ``(B, D)``.
        :return: Actions, shape ``(B, D)``.
        """
        actor = self.actor
        with th.no_grad():
            obs_tensor = th.as_tensor(self.observe(obs), device=actor.device)
            latent_tensor = th.as_tensor(latent, dtype=th.float32, device=actor.device)
            squashed = actor.latent_to_action(obs_tensor, latent_tensor).cpu().numpy()
        return self.policy.unscale_action(squashed)

    def predict(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """
        The level acting on its own (as the top of a hierarchy).

        :param obs: Environment observations, shape ``(B, obs_dim)``.
        :param deterministic: Whether to use the deterministic action.
        :return: Actions in the level's action space, shape ``(B, action_dim)``.
        """
        actions, _ = self.policy.predict(self.observe(obs), deterministic=deterministic)
        return actions

    def state_for_saving(self) -> dict[str, Any]:
        """Everything but the policy weights, as plain data."""
        return {"lower_obs": self.lower_obs, "source": self.source}
