"""The hypothesis settings of the input property tests (issue 22): a fixed seed and a few hundred examples in
CI; `DSAAS_FUZZ_EXAMPLES=5000 DSAAS_FUZZ_RANDOM=1` explores further (new examples each run), as for the
stack-file fuzzing in tests/test_stack_files.py."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_RANDOM = os.environ.get("DSAAS_FUZZ_RANDOM") == "1"


def fuzz(examples: int) -> settings:
    """`examples` by default (each test stays under ~20 s on two cores), or DSAAS_FUZZ_EXAMPLES."""
    return settings(
        derandomize=not FUZZ_RANDOM,
        database=None,
        max_examples=int(os.environ.get("DSAAS_FUZZ_EXAMPLES", str(examples))),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
    )
