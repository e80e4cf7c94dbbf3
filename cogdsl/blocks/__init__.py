"""The block registry: every block kind, by name. Import a family module to register its kinds."""

# Importing a family module registers its kinds.
from cogdsl.blocks import (  # noqa: F401
    attention,
    controllers,
    dmn,
    dnc,
    draw,
    embed,
    heads,
    latent,
    memnet,
    memory,
    multiscale,
    stacks,
    visual,
    window,
)
from cogdsl.blocks.base import REGISTRY, BlockKind, Param

__all__ = ["REGISTRY", "BlockKind", "Param"]
