"""sb3-lsp: latent-space policies (SAC-LSP, Haarnoja et al. 2018) for Stable-Baselines3.

Importing the package registers the ``"LSPPolicy"`` alias on SAC and on sb3-contrib's TQC, and
the paper's environments with Gymnasium (ids under ``sb3_lsp/``, see :mod:`sb3_lsp.envs`).
"""

from sb3_contrib import TQC
from stable_baselines3 import SAC

from sb3_lsp.envs import register_envs
from sb3_lsp.flows import ConditionalRealNVP, TanhBijector
from sb3_lsp.hierarchy import HierarchicalPolicy, LatentActionWrapper
from sb3_lsp.policies import LSPActor, LSPPolicy, TQCLSPPolicy

__version__ = "0.1.0"

SAC.policy_aliases["LSPPolicy"] = LSPPolicy
TQC.policy_aliases["LSPPolicy"] = TQCLSPPolicy
register_envs()

__all__ = [
    "ConditionalRealNVP",
    "HierarchicalPolicy",
    "LSPActor",
    "LSPPolicy",
    "LatentActionWrapper",
    "TQCLSPPolicy",
    "TanhBijector",
    "__version__",
    "register_envs",
]
