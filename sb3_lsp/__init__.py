"""sb3-lsp: latent-space policies (SAC-LSP, Haarnoja et al. 2018) for Stable-Baselines3.

Importing the package registers the policy names ``"LSPPolicy"`` (vector observations),
``"CnnLSPPolicy"`` (images) and ``"MultiInputLSPPolicy"`` (``Dict``) on SAC and on sb3-contrib's TQC, and
the paper's environments with Gymnasium (ids under ``sb3_lsp/``, see :mod:`sb3_lsp.envs`), whatever
else is imported. The RL Zoo tuning integration is installed only on request: :mod:`sb3_lsp.zoo`
(``python -m sb3_lsp.zoo``, or ``--gym-packages sb3_lsp.zoo.plugin`` in an rl_zoo3 command).
"""

from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp.diagnostics import SACDiagnostics
from sb3_lsp.envs import InfoReward, register_envs
from sb3_lsp.evaluation import InfoEvalCallback
from sb3_lsp.flows import ConditionalRealNVP, ElementwiseAffine, TanhSquash
from sb3_lsp.hierarchy import HierarchicalPolicy, LatentActionWrapper
from sb3_lsp.plotting import action_density, plot_action_density
from sb3_lsp.policies import (
    FLOW_PRESETS,
    SAC_POLICY_ALIASES,
    SB3_SQUASH_EPSILON,
    TQC_POLICY_ALIASES,
    CnnLSPPolicy,
    LSPActor,
    LSPPolicy,
    MultiInputLSPPolicy,
    TQCCnnLSPPolicy,
    TQCLSPPolicy,
    TQCMultiInputLSPPolicy,
)

__version__ = "0.1.0"

SAC.policy_aliases.update(SAC_POLICY_ALIASES)
TQC.policy_aliases.update(TQC_POLICY_ALIASES)
register_envs()


def __getattr__(name: str) -> type:
    # Release 0.1.0 exported the squash as TanhBijector, a name SB3 uses for another class
    if name == "TanhBijector":
        from sb3_lsp import flows

        return flows.TanhBijector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FLOW_PRESETS",
    "SB3_SQUASH_EPSILON",
    "CnnLSPPolicy",
    "ConditionalRealNVP",
    "ElementwiseAffine",
    "HierarchicalPolicy",
    "InfoEvalCallback",
    "InfoReward",
    "LSPActor",
    "LSPPolicy",
    "LatentActionWrapper",
    "MultiInputLSPPolicy",
    "SACDiagnostics",
    "TQCCnnLSPPolicy",
    "TQCLSPPolicy",
    "TQCMultiInputLSPPolicy",
    "TanhSquash",
    "__version__",
    "action_density",
    "plot_action_density",
    "register_envs",
]
