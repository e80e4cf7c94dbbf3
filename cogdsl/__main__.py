"""``python -m cogdsl`` is the ``cogdsl`` command; torchrun starts processes this way:
``torchrun --nproc-per-node 4 -m cogdsl train SPEC``."""

import sys

from cogdsl.cli.command import main

sys.exit(main())
