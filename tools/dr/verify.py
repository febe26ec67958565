"""`--verify ontap`: each planned home checked against what ONTAP holds now (issue 21, item 10).

The inventory (signed or not) says what the cluster knew when it wrote it; ONTAP says what is there now. For
every entry of a plan: the FlexVol (or the economy qtree and its FlexVol) exists on the stack's SVM, is
read-write (not a SnapMirror `dp` destination), is not the SVM root, carries in its comment the claim it was
made for (`dsaas.io/claim`, components/trident_render.py VOLUME_LABELS, where the labels were on) and has no
NFS client connected (an old node still mounting it). Three collection reads through NetApp's own client,
however many homes; each finding is a warning on its entry, so the reviewer decides.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from components.trident_render import VOLUME_LABELS, economy_flexvol_stem
from config.restore_plan import shown
from config.settings import Settings
from tools.dr import sources
from tools.dr.restore import PlanError

CLAIM_LABEL = next(key for key, value in VOLUME_LABELS.items() if value == "{{.volume.RequestName}}")
VOLUME_FIELDS = "name,uuid,type,state,comment,is_svm_root,svm.name"
QTREE_FIELDS = "name,volume.name,svm.name"
CLIENT_FIELDS = "client_ip,volume.name,svm.name"


def read_ontap(settings: Settings, ca_file: Path | None, address: str | None) -> dict[str, Any]:
    """The SVM's volumes, the qtrees in the stack's economy FlexVols and the connected NFS clients."""
    from netapp_ontap.error import NetAppRestError
    from netapp_ontap.resources.nfs_clients import NfsClients
    from netapp_ontap.resources.qtree import Qtree
    from netapp_ontap.resources.volume import Volume

    ontap = settings.storage.ontap
    connection, host = sources.ontap_connection(settings, ca_file, address)
    stem = economy_flexvol_stem(settings)
    try:
        with connection:
            volumes = list(Volume.get_collection(**sources._query(ontap.svm, fields=VOLUME_FIELDS)))
            qtrees = list(
                Qtree.get_collection(**sources._query(ontap.svm, fields=QTREE_FIELDS, **{"volume.name": f"{stem}*"}))
            )
            clients = list(NfsClients.get_collection(**sources._query(ontap.svm, fields=CLIENT_FIELDS)))
    except NetAppRestError as error:
        raise PlanError(sources._explain_ontap(error, host if address else None)) from None
    in_use: dict[str, set[str]] = defaultdict(set)
    for client in clients:
        name = getattr(getattr(client, "volume", None), "name", None)
        if name:
            in_use[str(name)].add(str(client.client_ip))
    return {
        "volumes": {str(v.name): v for v in volumes},
        "qtrees": {(str(q.volume.name), str(q.name)) for q in qtrees if hasattr(q, "volume")},
        "in_use": in_use,
        "svm": ontap.svm,
    }


def cross_check(plan_: dict[str, Any], found: dict[str, Any]) -> int:
    """Adds to each entry what ONTAP contradicts; returns how many entries got a warning."""
    flagged = 0
    for entry in plan_["homes"]:
        notes = _findings(entry, found)
        if notes:
            flagged += 1
            entry["warnings"].extend(notes)
            entry.setdefault("decision", None)
    return flagged


def _findings(entry: dict[str, Any], found: dict[str, Any]) -> list[str]:
    who = f"the home of {shown(entry['user'])} (claim {entry.get('oldClaim') or entry['claim']})"
    svm = found["svm"]
    qtree = entry.get("qtree")
    name = qtree["flexvol"] if qtree else entry.get("volume")
    if not name:
        return []
    notes: list[str] = []
    volume = found["volumes"].get(name)
    if volume is None:
        return [f"{who}: ONTAP has no volume {name} on SVM {svm} (checked with --verify ontap): find it, or skip"]
    if qtree and (name, qtree["name"]) not in found["qtrees"]:
        notes.append(f"{who}: ONTAP has no qtree {qtree['name']} in FlexVol {name} on SVM {svm}: find it, or skip")
    kind = str(getattr(volume, "type", "rw"))
    if kind == "dp":
        notes.append(
            f"{who}: {name} is a SnapMirror destination (type dp, read-only): break the relationship first "
            f"(`snapmirror break -destination-path {svm}:{name}`)"
        )
    elif kind != "rw":
        notes.append(f"{who}: {name} is of type {kind}, not a read-write volume")
    if getattr(volume, "is_svm_root", False):
        notes.append(f"{who}: {name} is the SVM's root volume, never a home")
    if str(getattr(volume, "state", "online")) != "online":
        notes.append(f"{who}: {name} is {volume.state}: bring it online first")
    if not qtree:
        owner = sources.comment_labels(getattr(volume, "comment", None)).get(CLAIM_LABEL)
        claim = entry.get("oldClaim") or entry["claim"]
        if owner is not None and owner != claim:
            notes.append(
                f"{who}: ONTAP's comment on {name} says it was made for claim {shown(owner)} ({CLAIM_LABEL}), "
                "not this one: the inventory or the plan hands someone else's home to this user"
            )
    clients = found["in_use"].get(name)
    if clients:
        notes.append(
            f"{who}: {name} is still in use: NFS clients {', '.join(sorted(clients)[:5])} are connected "
            "(ONTAP /api/protocols/nfs/connected-clients); stop the old nodes before the new cluster mounts it"
        )
    return notes


__all__ = ["cross_check", "read_ontap"]
