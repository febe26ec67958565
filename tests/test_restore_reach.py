"""Restored economy homes are reachable from the rebuilt cluster's nodes (issue 21, item 1).

The request is rendered purely from the plan and the settings; the step (components/ontap_exports.py) runs
against tests/e2e/ontap_replay.py, an ONTAP REST double that answers with the paths, fields, asynchronous jobs
and error codes of the real API for what the step uses, and refuses what ONTAP refuses (unknown body keys,
a policy the SVM lacks, a duplicate rule).
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import ontap_exports
from components import restore_render as render
from config.settings import PROJECT_ROOT
from tests.conftest import load_settings
from tests.e2e.ontap_replay import OntapReplay
from tests.test_restore_drill import fixture_plan
from tools.lab import pki

USER, PASSWORD = "vsadmin-dsaas", "ontap-reach-password"
SVM_UUID = "5a1e0c1e-0000-4000-8000-00000000a001"
OLD_BACKEND_POLICY = "trident-0f5c8a1e-7d3b-4c2a-9e61-2b7f4d8c1a90"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca("dsaas reach test CA")
    cert, key = pki.issue_server_cert(ca, ["127.0.0.1", "localhost"]).write(folder / "cert.pem", folder / "key.pem")
    return {"ca": ca.write_cert(folder / "ca.pem"), "cert": cert, "key": key}


def economy_request(**changes: Any) -> dict[str, Any]:
    settings = load_settings("prod")
    plan = render.RestorePlan.model_validate(fixture_plan("ontap-nas-economy"))
    request = render.render_export_access(plan, settings)
    assert request is not None
    return {**request, **changes}


def ontap_data(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """ONTAP as the lost cluster left it: Trident's empty policy on unpublished qtrees, a per-qtree policy
    (named after the qtree) on published ones, the old backend's policy on the FlexVols (ontap_nas_qtree.go
    Create, publishQtreeShare), none of which admits a new node."""
    prefix = request["policy"].split("_", 1)[0]
    svm = {"name": request["svm"], "uuid": SVM_UUID}
    flexvols = sorted({q["flexvol"] for q in request["qtrees"]})
    volumes = [
        {
            "uuid": f"0000000{i}-aaaa-4bbb-8ccc-000000000000",
            "name": name,
            "svm": dict(svm),
            "nas": {"path": f"/{name}", "export_policy": {"name": OLD_BACKEND_POLICY}},
        }
        for i, name in enumerate(flexvols)
    ]
    uuids = {v["name"]: v["uuid"] for v in volumes}
    qtrees = [
        {
            "svm": dict(svm),
            "volume": {"name": q["flexvol"], "uuid": uuids[q["flexvol"]]},
            "id": i + 1,
            "name": q["qtree"],
            "path": f"/{q['flexvol']}/{q['qtree']}",
            "export_policy": {"name": f"{prefix}empty" if i % 2 else q["qtree"]},
        }
        for i, q in enumerate(request["qtrees"])
    ]
    # A qtree of someone else's in the same FlexVol, which the step must leave alone.
    qtrees.append({**copy.deepcopy(qtrees[0]), "id": 999, "name": "not_restored", "export_policy": {"name": "other"}})
    policies = [
        {"id": 12884901800, "name": f"{prefix}empty", "svm": dict(svm), "rules": []},
        {"id": 12884901801, "name": "other", "svm": dict(svm), "rules": []},
        {"id": 12884901802, "name": OLD_BACKEND_POLICY, "svm": dict(svm), "rules": []},
    ]
    return {
        "cluster": [{"name": "ontap1", "uuid": "c1", "version": {"full": "9.16.1", "generation": 9}}],
        "svms": [dict(svm)],
        "volumes": volumes,
        "qtrees": qtrees,
        "export-policies": policies,
    }


@pytest.fixture
def ontap(tls: dict[str, Path]) -> Iterator[OntapReplay]:
    with OntapReplay(ontap_data(economy_request()), tls["cert"], tls["key"], USER, PASSWORD) as replay:
        yield replay


def environment(replay: OntapReplay, ca: Path, **changes: str) -> dict[str, str]:
    return {
        ontap_exports.HOST_ENV: f"127.0.0.1:{replay.port}",
        ontap_exports.USER_ENV: USER,
        ontap_exports.PASSWORD_ENV: PASSWORD,
        ontap_exports.CA_ENV: str(ca),
        **changes,
    }


def run(replay: OntapReplay, ca: Path, request: dict[str, Any], **changes: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = ontap_exports.main(environment(replay, ca, **changes), io.StringIO(json.dumps(request)))
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    return code, out.getvalue(), err.getvalue()


def changes(replay: OntapReplay) -> list[str]:
    return [r for r in replay.requests if not r.startswith("GET ")]


# --- the request, rendered purely ----------------------------------------------------------------


def test_the_request_names_the_stacks_policy_cidrs_and_every_restored_qtree() -> None:
    settings = load_settings("prod")
    request = economy_request()
    homes = fixture_plan("ontap-nas-economy")["homes"]
    assert request["policy"] == f"{settings.storage.storage_prefix}_restored_homes"
    assert request["svm"] == settings.storage.ontap.svm
    # The node subnet (or dsaas:storage.exportCidrs): a replaced node in it needs nothing run.
    assert request["clients"] == [str(c) for c in settings.export_cidrs]
    assert request["qtrees"] == sorted(
        ({"flexvol": h["qtree"]["flexvol"], "qtree": h["qtree"]["name"]} for h in homes),
        key=lambda q: (q["flexvol"], q["qtree"]),
    )


def test_exportcidrs_become_the_rules_and_a_plan_without_economy_homes_needs_none() -> None:
    settings = load_settings("prod")
    subnet = settings.network.subnet
    halves = list(subnet.subnets(prefixlen_diff=1))
    narrowed = settings.model_copy(update={"storage": settings.storage.model_copy(update={"export_cidrs": halves})})
    plan = render.RestorePlan.model_validate(fixture_plan("ontap-nas-economy"))
    request = render.render_export_access(plan, narrowed)
    assert request is not None and request["clients"] == [str(h) for h in halves]
    flexvols = render.RestorePlan.model_validate(fixture_plan("ontap-nas"))
    assert render.render_export_access(flexvols, settings) is None


def test_replaced_and_added_nodes_in_the_subnet_change_nothing() -> None:
    """The next node replacement: workers renumbered and one added in the same subnet. The request is the
    same, so pulumi-command does not run the step again, and every node, old and new, is admitted by a rule
    (Trident's own per-node rules would have needed a publish from each new node first)."""
    from ipaddress import ip_address, ip_network

    from config.settings import parse_settings
    from tests.conftest import settings_values

    values = settings_values("prod")
    values["dsaas:nodes"]["workers"].update(count=5, firstAddress="10.40.0.31")
    replaced = parse_settings(values)
    plan = render.RestorePlan.model_validate(fixture_plan("ontap-nas-economy"))
    before, after = economy_request(), render.render_export_access(plan, replaced)
    assert after == before
    assert {str(n.address) for n in replaced.workers} == {f"10.40.0.{i}" for i in range(31, 36)}
    for node in replaced.all_nodes:
        assert any(ip_address(node.address) in ip_network(c) for c in before["clients"]), node.name


# --- the step against the ONTAP double -----------------------------------------------------------


def test_the_step_gives_restored_qtrees_and_their_flexvols_the_policy_once(
    ontap: OntapReplay, tls: dict[str, Path]
) -> None:
    request = economy_request()
    code, out, err = run(ontap, tls["ca"], request)
    assert (code, err) == (0, ""), err
    assert "(created)" in out and f"{len(request['qtrees'])} restored qtree(s)" in out
    policy = ontap.policy_named(request["policy"])
    assert policy is not None and policy["svm"]["name"] == request["svm"]
    assert [(r["clients"], r["protocols"], r["ro_rule"], r["rw_rule"], r["superuser"]) for r in policy["rules"]] == [
        ([{"match": c}], ["nfs"], ["any"], ["any"], ["any"]) for c in request["clients"]
    ]
    planned = {(q["flexvol"], q["qtree"]) for q in request["qtrees"]}
    for qtree in ontap.data["qtrees"]:
        restored = (qtree["volume"]["name"], qtree["name"]) in planned
        assert (qtree["export_policy"]["name"] == request["policy"]) is restored, qtree["name"]
    assert {v["nas"]["export_policy"]["name"] for v in ontap.data["volumes"]} == {request["policy"]}
    # The PATCH bodies carry only the export policy, as the resource classes send a change.
    patches = [body for call, body in ontap.bodies if call.startswith("PATCH /api/storage/qtrees/")]
    assert patches and all(body == {"export_policy": {"name": request["policy"]}} for body in patches)

    ontap.requests.clear()
    code, out, _ = run(ontap, tls["ca"], request)
    assert code == 0 and "(created)" not in out and "rules added 0, removed 0" in out
    assert changes(ontap) == []  # idempotent: the second run only reads


def test_a_changed_subnet_is_reconciled_and_stray_rules_go(ontap: OntapReplay, tls: dict[str, Path]) -> None:
    request = economy_request()
    assert run(ontap, tls["ca"], request)[0] == 0
    policy = ontap.policy_named(request["policy"])
    assert policy is not None
    # Someone widened it by hand on ONTAP; then the nodes moved to another subnet (dsaas:network.subnet).
    assert ontap.add_rule(policy, {"clients": [{"match": "0.0.0.0/0"}]}) is None
    moved = economy_request(clients=["10.77.0.0/24"])
    code, out, err = run(ontap, tls["ca"], moved)
    assert code == 0, err
    assert "rules added 1, removed 2" in out
    assert [r["clients"] for r in policy["rules"]] == [[{"match": "10.77.0.0/24"}]]
    adds = [r for r in changes(ontap) if r.startswith("POST")]
    removals = [r for r in changes(ontap) if r.startswith("DELETE")]
    # The new subnet is admitted before the old one goes: nodes both lists admit are never shut out.
    assert changes(ontap).index(adds[-1]) < changes(ontap).index(removals[0])


def test_a_wrong_svm_or_a_missing_qtree_changes_nothing_and_names_the_setting(
    ontap: OntapReplay, tls: dict[str, Path]
) -> None:
    code, _, err = run(ontap, tls["ca"], economy_request(svm="svm_other"))
    assert code == 1 and "dsaas:storage.ontap.svm" in err and "svm_other" in err
    request = economy_request()
    gone = request["qtrees"][3]
    ontap.data["qtrees"] = [
        q for q in ontap.data["qtrees"] if (q["volume"]["name"], q["name"]) != (gone["flexvol"], gone["qtree"])
    ]
    code, _, err = run(ontap, tls["ca"], request)
    assert code == 1 and "dsaas:restore.plan" in err and f"{gone['flexvol']}/{gone['qtree']}" in err
    assert "nothing was changed" in err
    assert changes(ontap) == [] and ontap.policy_named(request["policy"]) is None


def test_the_double_refuses_what_ontap_refuses(ontap: OntapReplay, tls: dict[str, Path]) -> None:
    """The double is as strict as ONTAP for what the step uses, so the step's passing means something."""
    import requests

    base = f"https://127.0.0.1:{ontap.port}"
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    session.verify = str(tls["ca"])
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace session.verify
    qtree = ontap.data["qtrees"][0]
    url = f"{base}/api/storage/qtrees/{qtree['volume']['uuid']}/{qtree['id']}"
    refused = session.patch(url, json={"id": 5, "export_policy": {"name": "other"}})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "262179"
    job = session.patch(url, json={"export_policy": {"name": "no_such_policy"}}).json()["job"]
    failed = session.get(base + job["_links"]["self"]["href"]).json()
    assert failed["state"] == "failure" and failed["code"] == 1703954  # Trident's EXPORT_POLICY_NOT_FOUND
    assert qtree["export_policy"]["name"] != "no_such_policy"
    duplicate = session.post(
        f"{base}/api/protocols/nfs/export-policies", json={"name": "other", "svm": {"uuid": SVM_UUID}}
    )
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "1"
    rules = f"{base}/api/protocols/nfs/export-policies/12884901801/rules"
    assert session.post(rules, json={"clients": [{"match": "10.0.0.0/8"}]}).status_code == 201
    again = session.post(rules, json={"clients": [{"match": "10.0.0.0/8"}]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "1704070"
    assert session.get(f"{base}/api/svm/svms", auth=(USER, "wrong")).status_code == 401


def test_a_refused_login_or_an_untrusted_certificate_is_one_line_without_the_password(
    ontap: OntapReplay, tls: dict[str, Path]
) -> None:
    request = economy_request()
    code, out, err = run(ontap, tls["ca"], request, **{ontap_exports.PASSWORD_ENV: "wrong-" + PASSWORD})
    assert code == 1 and out == ""
    assert "dsaas:ontapUsername" in err and PASSWORD not in err and len(err.strip().splitlines()) == 1
    code, _, err = run(ontap, tls["ca"], request, **{ontap_exports.CA_ENV: ""})
    assert code == 1 and "dsaas:storage.ontap.caFile" in err
    assert changes(ontap) == []


def test_the_module_runs_as_pulumi_command_runs_it(ontap: OntapReplay, tls: dict[str, Path]) -> None:
    """`python -m components.ontap_exports` with the request on stdin and the credentials in the
    environment: nothing secret on its command line."""
    request = economy_request()
    argv = [sys.executable, "-m", "components.ontap_exports"]
    env = {**os.environ, **environment(ontap, tls["ca"])}
    done = subprocess.run(
        argv, input=json.dumps(request), env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"dsaas: export policy {request['policy']} on SVM {request['svm']}")
    assert all(PASSWORD not in part for part in argv)
