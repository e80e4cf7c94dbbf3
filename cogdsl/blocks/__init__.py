"""The block registry: every block kind, by name. Import a family module to register its kinds."""

from cogdsl.blocks import attention, controllers, dmn, dnc, heads, memnet, memory  # noqa: F401  (registers the kinds)
from cogdsl.blocks.base import REGISTRY, BlockKind, Param

__all__ = ["REGISTRY", "BlockKind", "Param"]
