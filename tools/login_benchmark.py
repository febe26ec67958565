"""Load benchmark: N concurrent logins against a local hub (the stack's rendered config) and slapd.

    python -m tools.login_benchmark [--stack dev] [--logins 100] [--concurrency 100]

Each login is the browser's form round trip (GET /hub/login for the XSRF cookie, POST the form) for
the throwaway directory's allowed users in turn. Prints p50/p95/max latency and the error count.
A script for the README's figures, not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.lab.stack_hub import running_stack_hub


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.login_benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--logins", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="dsaas-login-benchmark-") as workdir,
        running_stack_hub(args.stack, Path(workdir), log_level="WARN") as (hub, directory),
    ):
        assert directory is not None
        users = [u for u in directory.users.values() if directory.users_group_dn in u.groups]

        def login(index: int) -> tuple[float, bool]:
            user = users[index % len(users)]
            started = time.perf_counter()
            response = hub.session().login(user.name, user.password)
            return time.perf_counter() - started, response.status == 302

        hub.session().login(users[0].name, users[0].password)  # warm-up: templates, first LDAP connection
        wall = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            results = list(pool.map(login, range(args.logins)))
        wall = time.perf_counter() - wall
    latencies = [seconds for seconds, _ in results]
    errors = sum(not ok for _, ok in results)
    print(f"{args.logins} logins, {args.concurrency} at a time, stack {args.stack}, users {len(users)}")
    print(
        f"p50 {statistics.median(latencies) * 1000:.0f} ms  p95 {percentile(latencies, 0.95) * 1000:.0f} ms  "
        f"max {max(latencies) * 1000:.0f} ms  errors {errors}  wall {wall:.1f} s "
        f"({args.logins / wall:.1f} logins/s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
