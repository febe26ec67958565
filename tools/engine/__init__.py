"""The real Pulumi engine for the test suite (issue 24), built from Pulumi's own Go modules.

`python -m tools.engine build` compiles what the Go module proxy serves of it, pinned in the go.mod files
under tools/engine/, into a per-machine cache (tools/engine/build.py says which pieces are refused).
"""
