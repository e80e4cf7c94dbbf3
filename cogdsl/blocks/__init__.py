"""The block registry: every block kind, by name.

Every module of this package is imported here, and importing a module registers the kinds it declares
(``@register``): a new kind is a new file in ``cogdsl/blocks/`` and nothing else.
"""

import importlib
import pkgutil

from cogdsl.blocks.base import REGISTRY, BlockKind, Param

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["REGISTRY", "BlockKind", "Param"]
