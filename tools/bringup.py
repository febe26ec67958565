"""For maintainers: `python -m tools.bringup <stack> --workers N...`, how long a first `pulumi up` takes.

An entry point only, so the documented command stays where it was: the code is tools/bench/bringup.py.
"""

import sys

from tools.bench.bringup import main

if __name__ == "__main__":
    sys.exit(main())
