"""Give the rebuilt cluster's nodes NFS access to restored `ontap-nas-economy` homes, through an export policy
the program owns. Run by pulumi-command on the operator's machine as `.venv/bin/python -m
components.ontap_exports`, before the restored volumes are created (docs/restore.md, "Reaching restored
economy homes"). Inputs:

    environment  DSAAS_ONTAP_HOST (the stack's managementLif, HOST or HOST:PORT), DSAAS_ONTAP_USERNAME,
                 DSAAS_ONTAP_PASSWORD (Pulumi secrets: never on a command line), DSAAS_ONTAP_CA_FILE (optional)
    stdin        the JSON `components.restore_render.render_export_access` writes: the SVM, the policy's name,
                 the client CIDRs, the restored qtrees and their FlexVols (10,000 homes do not fit in one
                 environment variable, whose size Linux caps at 128 KiB)

Why it is needed: with `autoExportPolicy`, Trident keeps every qtree it does not have published on the empty
policy `<prefix>empty` and grants each node access when it publishes a volume to it
(NetApp/trident v26.06.0 storage_drivers/ontap/ontap_nas_qtree.go: Create, `publishQtreeShare`, Unpublish;
ontap_common.go `getEmptyExportPolicyName`). A restored home is a static NFS volume Trident never publishes,
so nothing else would ever let a new node in. ONTAP also checks the policy of every component of the path:
a client that may use a qtree needs at least read access to its FlexVol too (NetApp KB "7MTT Precheck 10111",
and Trident itself moves the FlexVol to its backend policy in `publishQtreeShare`), so the FlexVols get the
policy as well.

What it does, idempotently (a second run changes nothing):

1. the policy `<prefix>_restored_homes` exists on the SVM with exactly one rule per client CIDR, for NFS,
   `ro_rule`/`rw_rule`/`superuser` `any`: the rule Trident writes for a node (api/abstraction_rest.go
   `ExportRuleCreate`), widened from one node address to the node subnet, so a replaced node in the
   subnet has access without anything being run. Missing rules are added before stray ones are removed,
   so a change of CIDRs never shuts out the nodes both lists admit;
2. every planned qtree, and every FlexVol that holds one, uses that policy.

Exit 0 with one summary line; 1 with one line naming the setting (or plan entry) to fix.
ONTAP REST calls through NetApp's own client, netapp-ontap (pinned in requirements.txt).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from netapp_ontap.error import NetAppRestError
from netapp_ontap.host_connection import HostConnection
from netapp_ontap.resources.export_policy import ExportPolicy
from netapp_ontap.resources.export_rule import ExportRule
from netapp_ontap.resources.qtree import Qtree
from netapp_ontap.resources.svm import Svm
from netapp_ontap.resources.volume import Volume

HOST_ENV = "DSAAS_ONTAP_HOST"
USER_ENV = "DSAAS_ONTAP_USERNAME"
PASSWORD_ENV = "DSAAS_ONTAP_PASSWORD"
CA_ENV = "DSAAS_ONTAP_CA_FILE"
# What Trident's REST client sends for a node's rule (api/abstraction_rest.go ExportRuleCreate: protocol
# "nfs", ro/rw/superuser flavours "any").
PROTOCOLS = ("nfs",)
FLAVOURS = ("any",)
MANAGEMENT_LIF = "dsaas:storage.ontap.managementLif"
SVM_KEY = "dsaas:storage.ontap.svm"
CA_KEY = "dsaas:storage.ontap.caFile"
CREDENTIALS = "the secrets dsaas:ontapUsername and dsaas:ontapPassword"
PLAN_KEY = "dsaas:restore.plan"


class AccessError(RuntimeError):
    """ONTAP could not be set up as asked; the message names the setting or plan entry to fix."""


@dataclass(frozen=True)
class AccessRequest:
    svm: str
    policy: str
    clients: tuple[str, ...]
    qtrees: tuple[tuple[str, str], ...]
    """(flexvol, qtree) of every restored economy home."""

    @staticmethod
    def from_json(text: str) -> AccessRequest:
        try:
            data = json.loads(text)
            return AccessRequest(
                svm=str(data["svm"]),
                policy=str(data["policy"]),
                clients=tuple(str(c) for c in data["clients"]),
                qtrees=tuple((str(q["flexvol"]), str(q["qtree"])) for q in data["qtrees"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise AccessError(
                f"the request on stdin is not what the program writes ({error.__class__.__name__}); run it "
                "through `pulumi up`"
            ) from None

    @property
    def flexvols(self) -> list[str]:
        return sorted({flexvol for flexvol, _ in self.qtrees})


@dataclass
class Report:
    policy_created: bool = False
    rules_added: list[str] = field(default_factory=list)
    rules_removed: list[str] = field(default_factory=list)
    qtrees_moved: int = 0
    flexvols_moved: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.policy_created or self.rules_added or self.rules_removed or self.qtrees_moved or self.flexvols_moved
        )

    def summary(self, request: AccessRequest) -> str:
        return (
            f"dsaas: export policy {request.policy} on SVM {request.svm} admits {', '.join(request.clients)}"
            f"{' (created)' if self.policy_created else ''}; rules added {len(self.rules_added)}, removed "
            f"{len(self.rules_removed)}; {len(request.qtrees)} restored qtree(s) in {len(request.flexvols)} "
            f"FlexVol(s) use it ({self.qtrees_moved} qtree(s) and {self.flexvols_moved} FlexVol(s) moved now)"
        )


def _rule_body(cidr: str) -> dict[str, Any]:
    return {
        "clients": [{"match": cidr}],
        "protocols": list(PROTOCOLS),
        "ro_rule": list(FLAVOURS),
        "rw_rule": list(FLAVOURS),
        "superuser": list(FLAVOURS),
    }


def _rule_cidr(rule: Any) -> str | None:
    """The CIDR a rule admits if it is exactly one of ours (one client, NFS, `any` flavours), else None."""
    data = rule.to_dict()
    clients = [c.get("match") for c in data.get("clients", [])]
    if len(clients) != 1:
        return None
    same = all(tuple(data.get(key, ())) == FLAVOURS for key in ("ro_rule", "rw_rule", "superuser"))
    return str(clients[0]) if same and tuple(data.get("protocols", ())) == PROTOCOLS else None


def grant(request: AccessRequest) -> Report:
    """Make ONTAP match `request` (inside an open HostConnection); what changed. Everything is looked up
    before anything is changed, so a wrong SVM or a qtree the plan names but ONTAP lacks changes nothing."""
    report = Report()
    if not list(Svm.get_collection(name=request.svm, fields="uuid")):
        raise AccessError(f"ONTAP has no SVM named {request.svm!r}: check {SVM_KEY}")
    qtrees = _find_qtrees(request)
    volumes = _find_flexvols(request)
    policies = list(ExportPolicy.get_collection(**_query(request.svm, name=request.policy, fields="id")))
    if not policies:
        ExportPolicy(
            name=request.policy, svm={"name": request.svm}, rules=[_rule_body(c) for c in request.clients]
        ).post()
        report.policy_created = True
        report.rules_added = list(request.clients)
    else:
        _reconcile_rules(int(policies[0].id), request.clients, report)
    for qtree in qtrees:
        if _policy_name(qtree) != request.policy:
            moved: Any = Qtree(volume={"uuid": qtree.volume.uuid}, id=qtree.id)
            # Set after construction: netapp-ontap PATCHes only what changed since then (the policy).
            moved.export_policy = {"name": request.policy}
            moved.patch()
            report.qtrees_moved += 1
    for volume in volumes:
        current = getattr(getattr(getattr(volume, "nas", None), "export_policy", None), "name", None)
        if current != request.policy:
            changed: Any = Volume(uuid=volume.uuid)
            changed.nas = {"export_policy": {"name": request.policy}}
            changed.patch()
            report.flexvols_moved += 1
    return report


def _reconcile_rules(policy_id: int, clients: Iterable[str], report: Report) -> None:
    rules = list(ExportRule.get_collection(policy_id, fields="index,clients,protocols,ro_rule,rw_rule,superuser"))
    wanted = list(clients)
    kept: set[str] = set()
    stray = []
    for rule in rules:
        cidr = _rule_cidr(rule)
        if cidr in wanted and cidr not in kept:
            kept.add(cidr)
        else:
            stray.append(rule)
    for cidr in wanted:
        if cidr not in kept:
            ExportRule(policy_id, **_rule_body(cidr)).post()
            report.rules_added.append(cidr)
    # Highest index first: the rules still to go keep their index whether or not ONTAP renumbers.
    for rule in sorted(stray, key=lambda r: int(r.index), reverse=True):
        report.rules_removed.append(",".join(str(c.get("match")) for c in rule.to_dict().get("clients", [])))
        rule.delete()


def _find_qtrees(request: AccessRequest) -> list[Any]:
    """The planned qtrees as ONTAP lists them: one query per FlexVol (at most a few hundred qtrees each). The
    names go into ONTAP queries as they are: the plan's loader admits no `*`, `|` or `!` in them
    (restore_render.PlannedQtree), so each query matches exactly one name."""
    planned: dict[str, set[str]] = {}
    for flexvol, qtree in request.qtrees:
        planned.setdefault(flexvol, set()).add(qtree)
    found: list[Any] = []
    missing: list[str] = []
    for flexvol in sorted(planned):
        listed = {
            str(q.name): q
            for q in Qtree.get_collection(
                **_query(request.svm, fields="id,name,volume.uuid,export_policy.name", **{"volume.name": flexvol})
            )
        }
        for name in sorted(planned[flexvol]):
            if name in listed:
                found.append(listed[name])
            else:
                missing.append(f"{flexvol}/{name}")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise AccessError(
            f"SVM {request.svm} has no qtree {shown} that {PLAN_KEY} names: plan again from the newest inventory "
            "(`python -m tools.restore plan <stack>`), or set `decision: skip` with a reason on those entries; "
            "nothing was changed on ONTAP"
        )
    return found


def _find_flexvols(request: AccessRequest) -> list[Any]:
    volumes = []
    for flexvol in request.flexvols:
        listed = list(Volume.get_collection(**_query(request.svm, name=flexvol, fields="uuid,nas.export_policy.name")))
        if not listed:
            raise AccessError(f"SVM {request.svm} has no FlexVol {flexvol} that {PLAN_KEY} names")
        volumes.append(listed[0])
    return volumes


def _query(svm: str, **fields: str) -> dict[str, Any]:
    """ONTAP REST query parameters (netapp-ontap passes unknown keyword arguments on as the query)."""
    return {"svm.name": svm, **fields}


def _policy_name(qtree: Any) -> str | None:
    return cast(str | None, getattr(getattr(qtree, "export_policy", None), "name", None))


def connection_from(env: Mapping[str, str]) -> HostConnection:
    missing = [key for key in (HOST_ENV, USER_ENV, PASSWORD_ENV) if not env.get(key)]
    if missing:
        raise AccessError(f"the environment lacks {', '.join(missing)} (the program sets them; run it through pulumi)")
    address = env[HOST_ENV]
    named, _, given = address.rpartition(":")
    host, port = (named, int(given)) if named and given.isdigit() else (address, 443)
    ca_file = env.get(CA_ENV) or None
    connection = HostConnection(
        host,
        username=env[USER_ENV],
        password=env[PASSWORD_ENV],
        # requests' `verify`: a CA bundle's path, or True for the system's CAs.
        verify=cast(bool, ca_file or True),
        port=port,
        protocol_timeouts=(10, 120),
        # Qtree and volume changes are ONTAP jobs; netapp-ontap waits for each (5 s polls, 30 s by default).
        poll_timeout=300,
        poll_interval=1,
    )
    if ca_file:
        _pin_ca(connection.session, ca_file)
    return connection


def _pin_ca(session: Any, ca_file: str) -> None:
    """Verify with `ca_file` even where REQUESTS_CA_BUNDLE is set: requests lets that variable override a
    session's own CA bundle (netapp-ontap's WrappedSession protects only verify=False)."""
    merge = session.merge_environment_settings

    def pinned(url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings: dict[str, Any] = merge(url, proxies, stream, verify, cert)
        settings["verify"] = ca_file
        return settings

    session.merge_environment_settings = pinned


def explain(error: NetAppRestError, host: str) -> str:
    """One line naming what to fix, from what netapp-ontap raised."""
    status = getattr(error, "status_code", None)
    text = str(error)
    if status == 401:
        return f"ONTAP at {host} refused the login: check {CREDENTIALS}"
    if status == 403:
        return (
            f"ONTAP at {host} does not let that account manage export policies and qtrees: give the role of "
            f"{CREDENTIALS} access to /api/protocols/nfs/export-policies, /api/storage/qtrees, /api/storage/volumes"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return f"ONTAP at {host} presents a certificate the operator's machine does not trust: name its CA in {CA_KEY}"
    if status is None:
        return f"ONTAP at {host} cannot be reached ({text.splitlines()[0][:200]}): check {MANAGEMENT_LIF}"
    return f"ONTAP at {host} answered {status}: {text.splitlines()[0][:300]}"


def main(
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    connect: Callable[[Mapping[str, str]], HostConnection] = connection_from,
) -> int:
    env = os.environ if env is None else env
    host = env.get(HOST_ENV, "?")
    try:
        request = AccessRequest.from_json((stdin or sys.stdin).read())
        with connect(env):
            report = grant(request)
    except AccessError as error:
        print(f"dsaas: {error}", file=sys.stderr)
        return 1
    except NetAppRestError as error:
        print(f"dsaas: {explain(error, host)}", file=sys.stderr)
        return 1
    print(report.summary(request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
