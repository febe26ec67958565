"""The lab: real local services on 127.0.0.1 for the end-to-end tests, try_hub and login_benchmark.

For the tests and the commands that try things before a deployment: a throwaway slapd in each directory shape
(`directory`, its TLS material from `pki`), a real JupyterHub running the chart's own configuration with a
local-process spawner (`hub`, `spawner`; `stack_hub` makes a stack's rendered values runnable there, `configs`
holds reference configurations for the harness's own tests), headless Chromium (`browser`) and process
helpers (`procs`). Nothing here talks to vCenter or a cluster.
"""
