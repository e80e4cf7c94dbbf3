"""``cogdsl.train``: train a spec (``cogdsl.train(spec, steps=...)``), and the names of the training loop.

The loop lives in :mod:`cogdsl.training.loop`; this name stays because users call it and import from it
(``from cogdsl.train import evaluate``): it *is* that module, which is callable.
"""

import sys

from cogdsl.training import loop

sys.modules[__name__] = loop
