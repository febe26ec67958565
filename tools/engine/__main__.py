"""`python -m tools.engine build`: build (or find in the per-machine cache) the Pulumi engine's binaries."""

import argparse
import sys

from tools.engine import build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.engine", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build (or find in the cache) the pinned Pulumi binaries")
    parser.parse_args(argv)
    return build.command()


if __name__ == "__main__":
    sys.exit(main())
