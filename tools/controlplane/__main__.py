"""The suite's Kubernetes control plane: `python -m tools.controlplane build [--minor 1.35]` builds it (cached
per machine); `python -m tools.controlplane vendor <name> --git-dir DIR` rewrites one entry of
tests/upstream/manifests.yaml (the remote manifests the admission tests apply) from a clone of its repository
and exits 1 if a digest changed."""

import argparse
import sys
from pathlib import Path

from tools.controlplane import build, upstream


def vendor(name: str, git_dir: Path) -> int:
    problems = upstream.vendor(upstream.vendored(name), git_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.controlplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build (or find in the cache) the control plane's binaries")
    build_parser.add_argument(
        "--minor",
        default=None,
        help=f"Kubernetes minor (default {build.default_minor()}; {', '.join(build.MODULE_FILES)})",
    )
    vendor_parser = commands.add_parser("vendor", help="re-vendor one remote manifest entry from a clone")
    vendor_parser.add_argument("name", help="an entry of tests/upstream/manifests.yaml")
    vendor_parser.add_argument(
        "--git-dir", type=Path, required=True, help="a clone (or bare git dir) of its repository"
    )
    args = parser.parse_args(argv)
    if args.command == "vendor":
        return vendor(args.name, args.git_dir)
    return build.command(args.minor)


if __name__ == "__main__":
    sys.exit(main())
