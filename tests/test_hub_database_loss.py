"""A hub that starts with an empty database finds every user's claim under the same name as before.

The paper: "if the JupyterHub internal database is lost, the link to the pod and, thus, to the individual
runtime environment is lost". With the stack's pinned template and slug scheme it is not: the proof runs
JupyterHub's own code path (its ORM on a SQLite database, `jupyterhub.user.User`, whose `spawners['']`
builds the spawner and loads its stored state) with the real KubeSpawner 7 (its whole constructor), once on
a database that remembers each server's state and once on an empty one, for users with tricky names. The
names also equal what the restore planner writes. The one case that differs is a claim a KubeSpawner 6 hub
named with the old 'escape' scheme: the database alone kept that link, and the planner flags it and
creates the claim under the new name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User
from kubespawner import KubeSpawner
from traitlets.config import Config

from components import hub_render
from config.settings import parse_settings
from tests.dr_inventory import make_inventory, run_private, tricky_users
from tools.dr import restore
from tools.lab.stack_hub import stack_settings_values

CHART_CONFIG = (
    Path(__file__).parent / "upstream" / "charts" / "jupyterhub-4.4.0" / "files" / "hub" / "jupyterhub_config.py"
)
USERS = tricky_users(50)
LEGACY = "Jürgen.Müller"


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """KubeSpawner's constructor loads a kubeconfig (no API call is made): one that points nowhere."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: jupyterhub}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads KUBECONFIG once, at import.
    monkeypatch.setattr("kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield


def hub_spawner_config(values: dict[str, Any]) -> Config:
    """KubeSpawner's configuration as z2jh 4.4.0's jupyterhub_config.py builds it from the chart values:
    pvc_name_template from singleuser.storage.dynamic.pvcNameTemplate, then hub.config on top."""
    chart = CHART_CONFIG.read_text()
    assert 'get_config("singleuser.storage.dynamic.pvcNameTemplate")' in chart
    assert "c.KubeSpawner.pvc_name_template = pvc_name_template" in chart
    config = Config()
    config.KubeSpawner.pvc_name_template = values["singleuser"]["storage"]["dynamic"]["pvcNameTemplate"]
    config.KubeSpawner.namespace = hub_render.HUB_NAMESPACE
    for section, traits in values["hub"]["config"].items():
        if section == "KubeSpawner":
            for name, value in traits.items():
                setattr(config.KubeSpawner, name, value)
    return config


async def claim_names(db_url: str, config: Config, users: list[str]) -> dict[str, str]:
    """Each user's default-server claim name as the hub's own User → spawner path computes it."""
    db = orm.new_session_factory(db_url)()
    settings: dict[str, Any] = {"spawner_class": KubeSpawner, "config": config, "hub": Hub(), "db": db}
    names: dict[str, str] = {}
    for name in users:
        orm_user = orm.User.find(db, name)
        if orm_user is None:  # an empty database: the user logs in again and is created anew
            orm_user = orm.User(name=name)
            db.add(orm_user)
            db.commit()
        spawner = User(orm_user, settings).spawners[""]
        assert isinstance(spawner, KubeSpawner)
        names[name] = spawner.pvc_name
    db.close()
    return names


async def remember(db_url: str, config: Config, users: list[str], legacy: dict[str, str]) -> None:
    """The old hub's database: each server's state as KubeSpawner 7 stores it once its claim exists."""
    db = orm.new_session_factory(db_url)()
    settings: dict[str, Any] = {"spawner_class": KubeSpawner, "config": config, "hub": Hub(), "db": db}
    for name in users:
        orm_user = orm.User(name=name)
        db.add(orm_user)
        db.commit()
        spawner = User(orm_user, settings).spawners[""]
        if name in legacy:  # a KubeSpawner 6 hub made this claim; 7 adopted it and stored its name
            spawner.pvc_name = legacy[name]
        spawner._pvc_exists = True
        spawner.orm_spawner.state = spawner.get_state()
        db.commit()
    db.close()


def test_an_empty_hub_database_computes_the_same_claim_names(tmp_path: Path) -> None:
    settings = parse_settings(stack_settings_values("prod"))
    config = hub_spawner_config(hub_render.render_hub_values(settings, hub_render.HubSecrets("", "")))
    old_db, new_db = f"sqlite:///{tmp_path / 'old.sqlite'}", f"sqlite:///{tmp_path / 'new.sqlite'}"
    # All on prod's homes driver (ontap-nas FlexVols are imported only there).
    inventory = make_inventory(USERS, legacy=[LEGACY], economy=[False] * len(USERS))
    legacy = {
        c["metadata"]["annotations"]["hub.jupyter.org/username"]: c["metadata"]["name"]
        for c in inventory["persistentVolumeClaims"]["items"]
        if c["metadata"]["annotations"]["hub.jupyter.org/username"] == LEGACY
    }

    async def both() -> tuple[dict[str, str], dict[str, str]]:
        await remember(old_db, config, USERS, legacy)
        return await claim_names(old_db, config, USERS), await claim_names(new_db, config, USERS)

    before, after = run_private(both())
    assert (tmp_path / "new.sqlite").exists()
    changed = {user for user in USERS if before[user] != after[user]}
    # Only the claim the database alone remembered (a KubeSpawner 6 'escape' name) changes.
    assert changed == {LEGACY}
    assert before[LEGACY] == legacy[LEGACY] and after[LEGACY] != legacy[LEGACY]
    for user in USERS:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", after[user]) and len(after[user]) <= 63, after[user]
    # The planner writes exactly what the empty-database hub will look for, and flags the changed one.
    source = restore.Source("s3", "s3://b/dsaas-prod/inventory/x.json", None)
    plan = restore.plan(restore.join_inventory(inventory), settings, source, "prod")
    planned = {home["user"]: home for home in plan["homes"]}
    assert {user: planned[user]["claim"] for user in USERS} == after
    # The renamed claim is no warning (issue 21, item 4): the plan records the old name and loads.
    assert [u for u, home in planned.items() if home["warnings"]] == []
    assert [u for u, home in planned.items() if "oldClaim" in home] == [LEGACY]
    assert planned[LEGACY]["oldClaim"] == legacy[LEGACY]
