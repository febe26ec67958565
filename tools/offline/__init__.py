"""The offline engine and what reviewers read: the program's graph without vCenter, a Pulumi CLI or credentials.

For reviewers (and the tests, which drive the same code): `mockgraph` runs the real `__main__.py` for a stack
file under Pulumi mocks and records every resource; from that recording `preview` prints the tree and writes the
artifacts, `snapshot` the committed desired state (`snapshots/<stack>.yaml`), `diff` an offline
`pulumi preview --diff` against a snapshot or a git ref, `diagram` the architecture picture, `environment` the
version manifest, `charts` the Helm charts rendered by Helm's own engine, `policy_runner` the policy pack over
the Analyzer protocol, and `redaction` keeps secrets out of all of it. `settings_doc` writes `docs/settings.md`
from the typed settings. Commands: `python -m tools.preview`, `tools.charts`, `tools.settings_doc`.
"""
