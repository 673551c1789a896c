"""sb3-lsp: latent-space policies (SAC-LSP, Haarnoja et al. 2018) for Stable-Baselines3.

Importing the package registers the policy names ``"LSPPolicy"`` (vector observations),
``"CnnLSPPolicy"`` (images) and ``"MultiInputLSPPolicy"`` (``Dict``) on SAC and on sb3-contrib's TQC, and
the paper's environments with Gymnasium (ids under ``sb3_lsp/``, see :mod:`sb3_lsp.envs`). Inside
an RL Zoo command (``--gym-packages sb3_lsp``) it also installs :mod:`sb3_lsp.zoo`, the tuning
integration.
"""

import sys

from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp.diagnostics import SACDiagnostics
from sb3_lsp.envs import register_envs
from sb3_lsp.flows import ConditionalRealNVP, ElementwiseAffine, TanhSquash
from sb3_lsp.hierarchy import HierarchicalPolicy, LatentActionWrapper
from sb3_lsp.plotting import action_density, plot_action_density
from sb3_lsp.policies import (
    SAC_POLICY_ALIASES,
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

# rl_zoo3.train and rl_zoo3.enjoy import rl_zoo3.exp_manager before --gym-packages: there, install
# the samplers and experiment manager too. Elsewhere `import sb3_lsp` stays free of rl_zoo3 and
# optuna. Last, since sb3_lsp.zoo imports the modules above from this package.
if "rl_zoo3.exp_manager" in sys.modules:
    import sb3_lsp.zoo  # noqa: F401


def __getattr__(name: str) -> type:
    # Release 0.1.0 exported the squash as TanhBijector, a name SB3 uses for another class
    if name == "TanhBijector":
        from sb3_lsp import flows

        return flows.TanhBijector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CnnLSPPolicy",
    "ConditionalRealNVP",
    "ElementwiseAffine",
    "HierarchicalPolicy",
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
