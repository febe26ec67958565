"""`python -m tools.controlplane build [--minor 1.35]`: build the suite's control plane (cached per machine)."""

import sys

from tools.controlplane import build

USAGE = "usage: python -m tools.controlplane build [--minor MINOR]"

if __name__ == "__main__":
    if sys.argv[1:2] != ["build"]:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(build.main(sys.argv[2:]))
