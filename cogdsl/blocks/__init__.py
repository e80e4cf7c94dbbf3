"""The block registry: every block kind, by name. Import a family module to register its kinds."""

# Importing a family module registers its kinds.
from cogdsl.blocks import attention, controllers, dmn, dnc, draw, heads, memnet, memory, visual  # noqa: F401
from cogdsl.blocks.base import REGISTRY, BlockKind, Param

__all__ = ["REGISTRY", "BlockKind", "Param"]
