"""Benchmark: evaluate the program under mocks for 3 control planes and many workers.

`python -m tools.benchmark [10 100 500]` prints, per worker count, the seconds the evaluation
took, the number of resources and the depth of the dependency graph (the longest chain of steps
that must run one after another). Worker joins are independent, so the depth must stay flat.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import sys
import time
from typing import Any

from tools.offline.mockgraph import Graph, read_stack_values, run_program


def scaled_values(workers: int) -> dict[str, Any]:
    """prod, with a node subnet large enough for `workers` addresses."""
    values = copy.deepcopy(read_stack_values("prod"))
    subnet = ipaddress.IPv4Network("10.40.0.0/20")
    values["dsaas:network"]["subnet"] = str(subnet)
    values["dsaas:nodes"]["workers"]["count"] = workers
    values["dsaas:nodes"]["workers"]["firstAddress"] = str(subnet.network_address + 256)
    return values


def measure(workers: int) -> tuple[float, Graph]:
    started = time.perf_counter()
    graph = run_program("prod", scaled_values(workers))
    return time.perf_counter() - started, graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("workers", nargs="*", type=int, default=[10, 100, 500])
    args = parser.parse_args(argv)
    print(f"{'workers':>8} {'resources':>10} {'seconds':>8} {'depth':>6}")
    depths = []
    for workers in args.workers:
        seconds, graph = measure(workers)
        depths.append(graph.depth())
        custom = sum(r.custom for r in graph.resources)
        print(f"{workers:>8} {custom:>10} {seconds:>8.2f} {graph.depth():>6}")
    if len(set(depths)) > 1:
        print("depth grows with the number of workers: worker joins are serialised somewhere", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
