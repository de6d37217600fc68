"""`python -m bench` (and `torchrun -m bench train`): the commands of bench/cli/."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
