"""`python -m tools.controlplane build [--minor 1.35]`: build the suite's control plane (cached per machine)."""

import sys

from tools.controlplane import build

if __name__ == "__main__":
    sys.exit(build.main(sys.argv[1:]))
