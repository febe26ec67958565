"""Benchmarks and models: how the program and its hub behave at scale, measured or modelled.

For the maintainers, when a change may cost time: `benchmark` evaluates the program under mocks for many
workers (the graph's depth must stay flat); `login_benchmark` measures the hub's login throughput against a
plain JupyterHub in `tools.lab`; `bringup` models how long a first `pulumi up` takes and what it waits on, with
`bringup_sim` (a discrete-event model of Pulumi's engine) and `bringup_table` (each step's duration and its
source). Commands: `python -m tools.benchmark`, `tools.login_benchmark`, `tools.bringup`.
"""
