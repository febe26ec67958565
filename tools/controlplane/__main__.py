"""`python -m tools.controlplane build [--minor 1.35]`: build the suite's control plane (cached per machine).

`python -m tools.controlplane vendor <name> --git-dir DIR`: rewrite one entry of tests/upstream/manifests.yaml
(the remote manifests the admission tests apply) from a clone of its repository; exit 1 if a digest changed.
"""

import sys
from pathlib import Path

from tools.controlplane import build, upstream

USAGE = "usage: python -m tools.controlplane build [--minor MINOR] | vendor NAME --git-dir DIR"


def vendor(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "--git-dir":
        print(USAGE, file=sys.stderr)
        return 2
    problems = upstream.vendor(upstream.vendored(argv[0]), Path(argv[2]))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        sys.exit(build.main(sys.argv[2:]))
    if sys.argv[1:2] == ["vendor"]:
        sys.exit(vendor(sys.argv[2:]))
    print(USAGE, file=sys.stderr)
    sys.exit(2)
