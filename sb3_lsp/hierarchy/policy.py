"""``HierarchicalPolicy``: the composed policy f0 o f1 o ... o f(K-1) acting on the raw environment."""

import importlib
import inspect
import io
import json
import math
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.policies import BasePolicy

from sb3_lsp.checks import finite_number, positive_int, refuse_unknown_keys
from sb3_lsp.hierarchy.levels import FrozenLevel, LevelSource
from sb3_lsp.hierarchy.wrapper import DEFAULT_LATENT_BOUND, LatentActionWrapper, picks_new_action

FORMAT = "sb3_lsp.HierarchicalPolicy"
FORMAT_VERSION = 1


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class HierarchicalPolicy:
    """
    A stack of frozen levels acting on the raw environment, lowest level first.

    Level ``K-1`` (the top) picks an action in its action space, which is the latent of level
    ``K-2``; each lower level maps its latent through its deterministic ``tanh(f(h; s))``, read
    on the current observation, down to level 0, whose output is the raw action. This is exactly
    what the top level experienced through nested :class:`LatentActionWrapper` s during training.

    **State (action_repeat > 1).** The wrapper embedding level ``i`` holds the latent from level
    ``i + 1`` for ``action_repeat[i]`` of its steps, so level ``L`` produces a new output every
    ``P_L = action_repeat[0] * ... * action_repeat[L-1]`` raw steps. ``predict`` returns, as SB3's
    recurrent policies do, a state ``(steps, held_1, ..., held_{K-1})``: per environment, the raw
    steps since its episode started and the latest output of each level above 0. Pass it back in
    the next call (``evaluate_policy`` does); ``episode_start[i] = True`` sets environment ``i``'s
    step count to 0, so every level decides afresh on the first observation of a new episode.
    ``state=None`` starts every environment afresh.

    The latent bounds are not settings of the composition: level ``i + 1`` was trained in the
    latent box of level ``i``, so its action space is that box (:attr:`latent_bounds`).

    :param levels: The frozen levels, lowest first; all but the top must be latent-space policies.
    :param action_repeats: For each level ``i < K-1``, the ``action_repeat`` of the wrapper that
        embedded it when level ``i + 1`` was trained (default: 1 each).
    :param latent_bounds: Release 0.1.0's second argument, now read from the levels; when given it
        must match them.
    """

    def __init__(
        self,
        levels: Sequence[FrozenLevel],
        action_repeats: Sequence[int] | None = None,
        *,
        latent_bounds: Sequence[float] | None = None,
    ) -> None:
        if len(levels) < 1:
            raise ValueError("A HierarchicalPolicy needs at least one level.")
        action_repeats = [1] * (len(levels) - 1) if action_repeats is None else list(action_repeats)
        if len(action_repeats) != len(levels) - 1:
            raise ValueError(
                f"{len(levels)} levels need {len(levels) - 1} action_repeats (one per level below the top), "
                f"got {len(action_repeats)}."
            )
        self.levels = list(levels)
        self.action_repeats = [positive_int("action_repeat", repeat) for repeat in action_repeats]
        # Every level reads the raw observation (its lower_obs slice of it): the top level's space.
        raw_space = self.levels[-1].policy.observation_space
        for level in self.levels[:-1]:
            level.check_observation_space(raw_space, f"the top level ({self.levels[-1].source})")
        for below, above in zip(self.levels, self.levels[1:], strict=False):
            latent_dim = below.actor.action_dim  # raises unless `below` is a latent-space policy
            high = above.action_space.high
            if above.action_space.shape != (latent_dim,) or not (
                np.allclose(above.action_space.low, -high) and np.allclose(high, high[0])
            ):
                raise ValueError(
                    f"Level {above.source} acts in {above.action_space}, which is not the latent box "
                    f"Box(-B, B, ({latent_dim},)) of the level below it ({below.source}): "
                    "it was not trained on that level through a LatentActionWrapper."
                )
        if latent_bounds is not None:
            given = [finite_number("latent_bound", bound, positive=True) for bound in latent_bounds]
            if not np.allclose(given, self.latent_bounds):
                raise ValueError(
                    f"latent_bounds {given} differ from the latent boxes the levels above were trained in "
                    f"({self.latent_bounds}): give each level the wrapper settings it was trained with."
                )
        # Level L produces a new output every periods[L] raw steps: the wrappers' holds, nested.
        self.periods = [math.prod(self.action_repeats[:level]) for level in range(len(self.levels))]

    @property
    def latent_bounds(self) -> list[float]:
        """For each level ``i < K-1``: the half-width of its latent box, the action box of level ``i + 1``."""
        return [float(level.action_space.high[0]) for level in self.levels[1:]]

    @classmethod
    def from_levels(
        cls,
        levels: Sequence[LevelSource],
        wrappers: Sequence[dict[str, Any]] | None = None,
        device: str = "cpu",
    ) -> "HierarchicalPolicy":
        """
        :param levels: Paths (SB3 ``.zip`` or RL Zoo run folders) or loaded models, lowest level first.
        :param wrappers: For each level but the top, the :class:`LatentActionWrapper` settings it was
            embedded with (``latent_bound``, ``action_repeat``, ``lower_obs``; others, such as the
            action prior, do not change how the policy acts and are ignored). Defaults are the wrapper's.
        :param device: Torch device of the levels.
        """
        wrappers = list(wrappers) if wrappers is not None else [{} for _ in levels[:-1]]
        if len(wrappers) != len(levels) - 1:
            raise ValueError(f"{len(levels)} levels need {len(levels) - 1} wrapper settings, got {len(wrappers)}.")
        known = set(inspect.signature(LatentActionWrapper.__init__).parameters) - {"self", "env", "lower"}
        for index, settings in enumerate(wrappers):
            refuse_unknown_keys(settings, known, f"LatentActionWrapper setting for level {index}")
        frozen = [
            FrozenLevel.load(source, lower_obs=settings.get("lower_obs"), device=device)
            for source, settings in zip(levels, [*wrappers, {}], strict=True)
        ]
        return cls(
            frozen,
            [settings.get("action_repeat", 1) for settings in wrappers],
            latent_bounds=[settings.get("latent_bound", DEFAULT_LATENT_BOUND) for settings in wrappers],
        )

    def _initial_state(self, n_envs: int) -> tuple[np.ndarray, ...]:
        held = [np.zeros((n_envs, *level.action_space.shape), np.float32) for level in self.levels[1:]]
        return (np.zeros(n_envs, np.int64), *held)

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """
        SB3's ``predict`` signature, so ``evaluate_policy`` works on the raw environment.

        :param observation: Raw observations, shape ``(obs_dim,)`` or ``(n_envs, obs_dim)``.
        :param state: The state returned by the previous call (see the class docstring), or None.
        :param episode_start: Per environment, whether its observation starts a new episode.
        :param deterministic: Top level's deterministic action (lower levels are always deterministic maps).
        :return: Raw actions (same leading shape as ``observation``) and the next state.
        """
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        n_envs = obs.shape[0]
        steps, *held = (np.copy(part) for part in (state if state is not None else self._initial_state(n_envs)))
        if episode_start is not None:
            steps[np.asarray(episode_start, dtype=bool).reshape(n_envs)] = 0

        top = len(self.levels) - 1
        for level in range(top, 0, -1):
            due = picks_new_action(steps, self.periods[level])
            if not due.any():
                continue
            if level == top:
                held[level - 1][due] = self.levels[level].predict(obs[due], deterministic)
            else:  # its action, in its own action box: the latent box of the level below
                held[level - 1][due] = self.levels[level].latent_to_action(obs[due], held[level][due])
        if top == 0:
            actions = self.levels[0].predict(obs, deterministic)
        else:
            actions = self.levels[0].latent_to_action(obs, held[0]).astype(np.float32)
        next_state = (steps + 1, *held)
        return (actions[0] if single else actions), next_state

    def save(self, path: str | Path) -> None:
        """
        Save all levels and their wrapper settings as one zip archive.

        :param path: Archive path (``.zip`` is appended when missing).
        """
        path = Path(path)
        path = path if path.suffix == ".zip" else path.with_name(path.name + ".zip")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "latent_bounds": self.latent_bounds,
            "action_repeats": self.action_repeats,
            "levels": [],
        }
        with zipfile.ZipFile(path, "w") as archive:
            for index, level in enumerate(self.levels):
                entry = {"policy_class": _class_path(type(level.policy)), "policy": f"level_{index}/policy.pth"}
                entry |= level.state_for_saving()
                buffer = io.BytesIO()
                level.policy.save(buffer)  # type: ignore[arg-type]  (torch.save takes file objects)
                archive.writestr(entry["policy"], buffer.getvalue())
                if level.obs_normalizer is not None:
                    entry["obs_normalizer"] = f"level_{index}/vecnormalize.pkl"
                    archive.writestr(entry["obs_normalizer"], pickle.dumps(level.obs_normalizer))
                manifest["levels"].append(entry)
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "HierarchicalPolicy":
        """
        :param path: An archive written by :meth:`save`.
        :param device: Torch device of the levels.
        """
        path = Path(path)
        if not path.is_file() and path.with_name(path.name + ".zip").is_file():
            path = path.with_name(path.name + ".zip")
        if not path.is_file():
            raise FileNotFoundError(
                f"No HierarchicalPolicy archive at {path}: pass the .zip written by HierarchicalPolicy.save."
            )
        try:
            with zipfile.ZipFile(path) as archive:
                if "manifest.json" not in archive.namelist():
                    raise ValueError(
                        f"{path} has no manifest.json: it is not a HierarchicalPolicy archive (a single level's .zip "
                        "loads with SAC.load/TQC.load), or it is truncated. Pass the file HierarchicalPolicy.save wrote."
                    )
                manifest = json.loads(archive.read("manifest.json"))
                if manifest.get("format") != FORMAT:
                    raise ValueError(
                        f"{path} is not a HierarchicalPolicy archive (its manifest says {manifest.get('format')!r})."
                    )
                if manifest.get("format_version") != FORMAT_VERSION:
                    raise ValueError(
                        f"{path} has HierarchicalPolicy format_version {manifest.get('format_version')!r}; this release "
                        f"of sb3-lsp reads version {FORMAT_VERSION}. Load it with the release that wrote it."
                    )
                levels = []
                for entry in manifest["levels"]:
                    policy_class: type[BasePolicy] = _import_class(entry["policy_class"])
                    policy = policy_class.load(io.BytesIO(archive.read(entry["policy"])), device=device)  # type: ignore[arg-type]
                    normalizer = pickle.loads(archive.read(entry["obs_normalizer"])) if "obs_normalizer" in entry else None
                    levels.append(FrozenLevel(policy, normalizer, entry["lower_obs"], entry["source"]))
        except (zipfile.BadZipFile, EOFError, KeyError) as error:  # truncated or corrupt
            raise ValueError(
                f"{path} is not a readable HierarchicalPolicy archive ({type(error).__name__}: {error}): the file is "
                "truncated or corrupt. Save the hierarchy again (python -m sb3_lsp.hierarchy train rewrites it)."
            ) from error
        return cls(levels, manifest["action_repeats"], latent_bounds=manifest["latent_bounds"])
