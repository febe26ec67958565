"""For maintainers: `python -m tools.login_benchmark`, the hub's login throughput against a plain hub.

An entry point only, so the documented command stays where it was: the code is tools/bench/login_benchmark.py.
"""

import sys

from tools.bench.login_benchmark import main

if __name__ == "__main__":
    sys.exit(main())
