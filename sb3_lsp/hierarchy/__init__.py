"""Hierarchies of latent-space policies (paper sections 5.1, 5.3, algorithm 1)."""

from sb3_lsp.hierarchy.levels import FrozenLevel
from sb3_lsp.hierarchy.policy import HierarchicalPolicy
from sb3_lsp.hierarchy.wrapper import LatentActionWrapper

__all__ = ["FrozenLevel", "HierarchicalPolicy", "LatentActionWrapper"]
