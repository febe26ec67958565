"""The disaster drill as an operator runs it, on one inventory with every edge case of issue 21 at once, and
the page docs/restore-drill.md written from what the commands really printed.

The inventory is shaped by Trident v26.06.0's and KubeSpawner 7.0.0's own code (tests/dr_inventory.py cites
each file), signed as the inventory CronJob signs it, and served by moto's S3 over HTTPS. The operator's
`python -m tools.restore plan prod` runs in a subprocess against it: first against five inventories nobody
should trust (each refused, no plan written), then against the cluster's own. The reviewer's decisions are
set in the plan, the program's loader is asked (refusing the plan before them), and the rebuilt stack's graph
is built under the mocks with the reviewed plan: its claims, its static volumes and the ONTAP export step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.loader import StackSettingsError
from tests.dr_inventory import make_inventory
from tests.e2e.test_restore_plan import (  # noqa: F401 (tls and s3 are the fixtures this module uses)
    INVENTORY_KEY,
    KEY_ID,
    SECRET,
    _client,
    _reset_auth,
    _run,
    _stack_dir,
    s3,
    tls,
)
from tools.dr import signing

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "restore-drill.md"
REGENERATE = "pytest tests/e2e/test_restore_drill_page.py --write-docs"
BUCKET = "dsaas-drill-edges"
FOLDER = "dsaas-prod/inventory"
STAMP, OLDER = "20261201T021500Z", "20261130T021500Z"
# One user per edge case (issue 21's numbers), on both drivers; prod's homesDriver is ontap-nas.
USERS = {
    "alice": "ontap-nas; also a named server 'gpu' with its own claim (item 9)",
    "Alice.Smith": "economy qtree (items 1 and 6: mixed drivers)",
    "bob@dc.example.org": "ontap-nas",
    "Jürgen.Müller": "ontap-nas, claim named by KubeSpawner 6's 'escape' scheme (item 4)",
    "zoë": "economy, restored by an earlier drill: a static NFS volume, no TridentVolume (item 2)",
    "李雷": "economy",
    "o'brien": "ontap-nas, PV renamed: its name is not its CSI volume handle (item 3)",
    "dave": "economy, claim deleted: the PV is Released (item 5)",
    "erin": "ontap-nas, claim names a PV the inventory lacks: unresolved (item 7)",
    "mallory": "economy, TridentVolume on another data LIF (item 10)",
    "trudy": "ontap-nas, TridentVolume naming the hub database's volume (item 10)",
    "a" * 70: "economy, qtree name past 64 characters: Trident's fallback name",
}
ECONOMY = {"Alice.Smith", "zoë", "李雷", "dave", "mallory", "a" * 70}
FOREIGN_LIF = "10.99.0.5"
HUB_DB_VOLUME = "dsaasprod_jupyterhub_hub_db_dir_4c5d6"


def cluster_inventory(written: str = "2026-12-01T02:15:00Z", users: list[str] | None = None) -> dict[str, Any]:
    """What the lost cluster's inventory CronJob wrote: the edge cases are the cluster's real state, signed."""
    names = users or list(USERS)
    inventory = make_inventory(
        names,
        economy=[user in ECONOMY for user in names],
        legacy=["Jürgen.Müller"],
        named={"alice": "gpu"},
        restored=["zoë"],
        released=["dave"],
        written=written,
    )
    claims = {c["metadata"]["name"]: c for c in inventory["persistentVolumeClaims"]["items"]}
    pvs = {p["metadata"]["name"]: p for p in inventory["persistentVolumes"]["items"]}
    volumes = {t["metadata"]["name"]: t for t in inventory["tridentVolumes"]["items"]}

    def claim_of(user: str) -> dict[str, Any]:
        return next(
            c
            for c in claims.values()
            if c["metadata"]["annotations"].get("hub.jupyter.org/username") == user
            and "hub.jupyter.org/servername" not in c["metadata"]["annotations"]
        )

    if "o'brien" in names:  # re-created by a backup tool under another name; the handle still names Trident's
        claim = claim_of("o'brien")
        pv = pvs.pop(claim["spec"]["volumeName"])
        pv["metadata"]["name"] = claim["spec"]["volumeName"] = "restored-home-obrien"
    if "erin" in names:  # the PV was deleted between the inventory's list calls
        claim_of("erin")["spec"]["volumeName"] = "pvc-5e1b7a70-0000-4000-8000-000000000000"
    if "mallory" in names:
        volumes[claim_of("mallory")["spec"]["volumeName"]]["config"]["accessInformation"]["nfsServerIp"] = FOREIGN_LIF
    if "trudy" in names:
        volumes[claim_of("trudy")["spec"]["volumeName"]]["config"]["internalName"] = HUB_DB_VOLUME
    return signing.sign(inventory, INVENTORY_KEY.encode())


def _swap_two_homes(document: dict[str, Any]) -> dict[str, Any]:
    nas = [t["config"] for t in document["tridentVolumes"]["items"] if "internalID" not in t["config"]]
    nas[0]["internalName"], nas[1]["internalName"] = nas[1]["internalName"], nas[0]["internalName"]
    return document


def _put(client: Any, objects: dict[str, dict[str, Any]]) -> None:
    for listed in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=listed["Key"])
    for name, document in objects.items():
        client.put_object(Bucket=BUCKET, Key=f"{FOLDER}/{name}", Body=json.dumps(document).encode())


def _shown(text: str, config_dir: Path) -> str:
    """What the command printed, as the page shows it: the test's folder as the operator's config/, and
    timings (which vary from run to run) elided."""
    text = text.replace(str(config_dir), "config")
    return re.sub(r" in \d+\.\d s\b", " in … s", text).rstrip()


def test_the_drill_with_every_edge_case_writes_its_page(
    s3: str,  # noqa: F811
    tls: dict[str, Path],  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    from components import restore_render as render
    from tests.test_restore_drill import relative_to_project
    from tools.lab.stack_hub import project_copy
    from tools.offline.mockgraph import run_program, unwrap

    client = _client(s3, tls["ca"], KEY_ID, SECRET)
    _reset_auth(s3, tls["ca"], "inf")
    client.create_bucket(Bucket=BUCKET)
    ca_file = project_copy(tls["ca"], "s3-ca.pem")
    config_dir = _stack_dir(tmp_path, {"endpoint": s3, "bucket": BUCKET, "caFile": ca_file})
    env = {"DSAAS_S3_ACCESS_KEY_ID": KEY_ID, "DSAAS_S3_SECRET_ACCESS_KEY": SECRET, signing.KEY_ENV: INVENTORY_KEY}
    plan_path = config_dir / "restore.prod.yaml"
    page: list[str] = []

    # --- 1. inventories nobody should trust: each refused, before any plan is written ---------------------
    own = cluster_inventory()
    older = cluster_inventory("2026-11-30T02:15:00Z", users=["alice", "bob@dc.example.org"])
    moved = json.loads(json.dumps(own))
    moved["written"] = "2026-12-03T02:15:00Z"
    unsigned = {k: v for k, v in own.items() if k != "signature"}
    foreign = signing.sign(
        {k: v for k, v in own.items() if k != "signature"},
        b"the chemistry stack's key, 32 random bytes as hex, 64 characters",
    )
    tampered = [
        ("two homes swapped in latest.json after the cluster signed it", {"latest.json": _swap_two_homes(moved)}, ()),
        ("latest.json's time moved two days on", {"latest.json": moved}, ()),
        ("signed with another stack's key", {"latest.json": foreign}, ()),
        ("no signature at all", {"latest.json": unsigned}, ()),
        (
            "yesterday's signed inventory put back as latest.json (a replay)",
            {"latest.json": older, f"{OLDER}.json": older, f"{STAMP}.json": own},
            (),
        ),
        (
            "yesterday's signed inventory copied over today's timestamped object",
            {"latest.json": own, f"{STAMP}.json": older},
            ("--inventory", STAMP),
        ),
    ]
    page += [
        "## 1. Inventories nobody should trust",
        "",
        "Each row is one `python -m tools.restore plan prod` against the bucket as the row describes it. Every",
        "one exits 2, writes no plan, and says what it found:",
        "",
        "| the bucket holds | exit | what the planner said |",
        "|---|---:|---|",
    ]
    for what, objects, flags in tampered:
        _put(client, objects)
        ran = _run("plan", "prod", "--config-dir", str(config_dir), *flags, env=env)
        said = _shown(ran.stderr, config_dir)
        assert ran.returncode == 2 and not plan_path.exists(), (what, ran.stdout, ran.stderr)
        assert "Traceback" not in said and INVENTORY_KEY not in said + ran.stdout
        page.append(f"| {what} | {ran.returncode} | {said.removeprefix('error: ').replace('|', '¦')} |")

    # --- 2. the cluster's own inventory -------------------------------------------------------------------
    _put(client, {"latest.json": own, f"{OLDER}.json": older, f"{STAMP}.json": own})
    ran = _run("plan", "prod", "--config-dir", str(config_dir), env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # written, with homes to review
    planned = yaml.safe_load(plan_path.read_text(encoding="utf-8"))
    summary = (config_dir / "restore.prod.summary.txt").read_text(encoding="utf-8")
    entries = {(h["user"], h.get("server") or ""): h for h in planned["homes"]}
    flagged = {key: h for key, h in entries.items() if h["warnings"]}
    assert planned["source"]["location"] == f"s3://{BUCKET}/{FOLDER}/{STAMP}.json"  # the object it used
    assert planned["source"]["signedBy"] == own["signature"]["keyId"]
    assert {user for user, _ in flagged} == {"alice", "erin", "mallory", "trudy"}, flagged
    assert entries[("zoë", "")]["driver"] == "ontap-nas-economy" and not entries[("zoë", "")]["warnings"]
    assert entries[("Jürgen.Müller", "")]["oldClaim"].startswith("claim--4a-c3-bcrgen")
    assert entries[("o'brien", "")]["volume"] and not entries[("o'brien", "")]["warnings"]  # joined by handle
    assert [r["oldClaim"] for r in planned["released"]] == ["jupyterhub/claim-dave"]
    page += [
        "",
        "## 2. The cluster's own inventory",
        "",
        "```console",
        "$ python -m tools.restore plan prod",
        _shown(ran.stdout, config_dir),
        f"$ echo $?\n{ran.returncode}",
        "```",
        "",
        "The entries that carry warnings, as the plan file has them:",
        "",
        "```yaml",
        yaml.safe_dump(
            [{k: v for k, v in h.items() if v not in (None, [], "")} for h in flagged.values()],
            allow_unicode=True,
            sort_keys=False,
            width=112,
        ).rstrip(),
        "```",
        "",
        "`restore.prod.summary.txt`, written beside the plan for the reviewer:",
        "",
        "```text",
        summary.rstrip(),
        "```",
    ]

    # --- 3. the program refuses the plan until a reviewer decides every flagged entry -------------------
    values = yaml.safe_load((config_dir / "Pulumi.prod.yaml").read_text(encoding="utf-8"))["config"]
    values["dsaas:restore"] = {"plan": relative_to_project(plan_path)}
    with pytest.raises(StackSettingsError) as refused:
        run_program("prod", values)
    refusal = str(refused.value)
    for user in ("erin", "mallory", "trudy"):
        assert repr(user) in refusal
    decisions = {
        ("alice", ""): ("restore", "her default server's home is the one KubeSpawner mounts; the gpu home is skipped"),
        ("alice", "gpu"): ("skip", "alice confirmed by mail that the gpu server's home is scratch; ONTAP keeps it"),
        ("erin", ""): ("skip", "erin's PV was deleted with her account on 2026-11-29 (ticket 4711)"),
        ("mallory", ""): ("skip", f"{FOREIGN_LIF} is chemistry's SVM: not ours to mount; reported to security"),
        ("trudy", ""): ("skip", "names the hub database's volume: never a home; reported to security"),
    }
    for home in planned["homes"]:
        decision = decisions.get((home["user"], home.get("server") or ""))
        if decision:
            home["decision"], home["reason"] = decision
    plan_path.write_text(yaml.safe_dump(planned, allow_unicode=True, sort_keys=False), encoding="utf-8")
    page += [
        "",
        "## 3. The reviewer's decisions",
        "",
        "Set as they are in the plan, before the reviewer's decisions the program refuses it (the offline",
        "preview, `pulumi preview` and `pulumi up` alike), naming each entry:",
        "",
        "```text",
        refusal.rstrip(),
        "```",
        "",
        "The reviewer sets `decision` and `reason` on each flagged entry:",
        "",
        "| user | server | decision | reason |",
        "|---|---|---|---|",
        *(f"| {user} | {server} | {d} | {reason} |" for (user, server), (d, reason) in decisions.items()),
    ]

    # --- 4. the rebuilt stack's graph with the reviewed plan ----------------------------------------------
    values["dsaas:restore"] = {"plan": relative_to_project(plan_path)}
    graph = run_program("prod", values)
    restore = graph.by_name("restore")
    hub = graph.by_name("hub-release")
    ancestors = graph.ancestors(hub)
    ours = [r for r in graph.resources if r.parent == restore.urn]
    claims = [unwrap(r.inputs) for r in ours if r.type == "kubernetes:core/v1:PersistentVolumeClaim"]
    volumes = [unwrap(r.inputs) for r in ours if r.type == "kubernetes:core/v1:PersistentVolume"]
    exports = [r for r in graph.resources if r.name == "restore-export-access"]
    restored_users = sorted(c["metadata"]["annotations"]["hub.jupyter.org/username"] for c in claims)
    assert restored_users == sorted(u for u in USERS if u not in {"dave", "erin", "mallory", "trudy"})
    assert all(r.urn in ancestors for r in ours)
    assert len(exports) == 1
    request_ = json.loads(unwrap(exports[0].inputs)["stdin"])
    assert {q["flexvol"] + "/" + q["qtree"] for q in request_["qtrees"]} == {
        f"{v['metadata']['annotations']['dsaas.io/qtree']}" for v in volumes
    }
    assert not any(r.name == "backend-ontap-nas-economy" for r in graph.resources)  # static: no economy backend
    page += [
        "",
        "## 4. The rebuilt stack's graph",
        "",
        "With the reviewed plan, the prod stack (homesDriver `ontap-nas`: no economy backend is made for the",
        f"restored qtrees) makes {len(claims)} claims under the names KubeSpawner 7 computes, {len(volumes)} static",
        "NFS volumes for the economy homes, and one ONTAP step, all before `hub-release`:",
        "",
        "| user | claim | how it comes back |",
        "|---|---|---|",
    ]
    static = {v["spec"]["claimRef"]["name"]: v for v in volumes}
    for claim in sorted(claims, key=lambda c: c["metadata"]["annotations"]["hub.jupyter.org/username"]):
        name = claim["metadata"]["name"]
        annotations = claim["metadata"]["annotations"]
        if name in static:
            nfs = static[name]["spec"]["nfs"]
            how = f"static PV `{static[name]['metadata']['name']}`: NFS `{nfs['server']}:{nfs['path']}`"
        else:
            how = f"Trident import of `{annotations[render.IMPORT_ORIGINAL_NAME]}` into the rebuilt backend"
        page.append(f"| {annotations['hub.jupyter.org/username']} | `{name}` | {how} |")
    page += [
        "",
        "The ONTAP step's request (`restore-export-access`, components/ontap_exports.py), which puts the restored",
        "qtrees and their FlexVols on the stack's export policy for the node subnet:",
        "",
        "```json",
        json.dumps(request_, indent=2, ensure_ascii=False),
        "```",
        "",
        "Released home (`dave`): listed in the plan with what to do, not restored:",
        "",
        "```yaml",
        yaml.safe_dump(planned["released"], allow_unicode=True, sort_keys=False, width=112).rstrip(),
        "```",
    ]

    text = "\n".join(
        [
            "# The restore drill, with every edge case",
            "",
            f"Generated by `{REGENERATE}` (tests/e2e/test_restore_drill_page.py) from what the commands printed;",
            "do not edit. The inventory is shaped by Trident v26.06.0's and KubeSpawner 7.0.0's own code",
            "(tests/dr_inventory.py cites each file), signed with the stack's inventory key as the inventory",
            "CronJob signs it, in moto's S3 over HTTPS. The steps are docs/restore.md's.",
            "",
            "| user | what the lost cluster held |",
            "|---|---|",
            *(f"| `{user}` | {what} |" for user, what in USERS.items()),
            "",
            *page,
            "",
        ]
    )
    if request.config.getoption("--write-docs"):
        PAGE.write_text(text, encoding="utf-8")
    assert PAGE.exists() and PAGE.read_text(encoding="utf-8") == text, f"{PAGE.name} is out of date: run `{REGENERATE}`"
