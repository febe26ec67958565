"""For maintainers: `python -m tools.benchmark [10 100 500]`, the program under mocks with many workers.

An entry point only, so the documented command stays where it was: the code is tools/bench/benchmark.py.
"""

import sys

from tools.bench.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
