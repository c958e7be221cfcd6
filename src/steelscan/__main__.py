"""`python -m steelscan ...` (and `torchrun -m steelscan train ...`) = the `steelscan` command."""

import sys

from .cli import main

sys.exit(main())
