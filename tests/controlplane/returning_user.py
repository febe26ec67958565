"""What the hub's KubeSpawner does for a returning user's claim, run against a real API server.

Run as a subprocess by tests/controlplane/test_restore_binding.py:

    python -m tests.controlplane.returning_user <etc dir> <users.json> <answers.json>

`<etc dir>` holds what the hub pod mounts at /usr/local/etc/jupyterhub (the chart's own
jupyterhub_config.py and z2jh.py, its rendered ConfigMap and Secret), laid out by the test; KUBECONFIG
names the API server. For each user, the hub's own path builds the spawner (JupyterHub's ORM on a fresh
in-memory database, `jupyterhub.user.User(...).spawners[""]`: the hub after a lost database), then
KubeSpawner 7's own `get_pvc_manifest()` and `_make_create_pvc_request()` (the POST that treats 409 as
"exists") run unchanged. Writes one JSON object to `<answers.json>` (not stdout: z2jh.py prints
there): user → {claim, manifest, created}.

A subprocess because the chart's configuration changes process-wide state (sys.path, tornado's HTTP
client class, z2jh's cached values) that the test process must not inherit.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any


async def _returning_users(etc: Path, users: list[str]) -> dict[str, dict[str, Any]]:
    from jupyterhub import orm
    from jupyterhub.objects import Hub
    from jupyterhub.user import User
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("jupyterhub_config.py", path=str(etc)).load_config()
    db = orm.new_session_factory("sqlite://")()
    settings: dict[str, Any] = {"spawner_class": KubeSpawner, "config": config, "hub": Hub(), "db": db}
    serializer = ApiClient()
    answers: dict[str, dict[str, Any]] = {}
    for name in users:
        orm_user = orm.User(name=name)
        db.add(orm_user)
        db.commit()
        spawner = User(orm_user, settings).spawners[""]
        manifest = spawner.get_pvc_manifest()
        created = await spawner._make_create_pvc_request(manifest, spawner.k8s_api_request_timeout)
        answers[name] = {
            "claim": spawner.pvc_name,
            "manifest": serializer.sanitize_for_serialization(manifest),
            "created": created,
            "storageClass": spawner.storage_class,
        }
    await serializer.close()
    db.close()
    return answers


def main(argv: list[str]) -> int:
    etc, users_file, answers_file = Path(argv[0]), Path(argv[1]), Path(argv[2])
    users: list[str] = json.loads(users_file.read_text(encoding="utf-8"))
    answers = asyncio.run(_returning_users(etc, users))
    answers_file.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
