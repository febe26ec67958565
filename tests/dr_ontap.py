"""What ONTAP holds after Trident v26.06.0 made the homes of a generated inventory (tests/dr_inventory.py), as the
records ONTAP's REST API answers (the JSON netapp-ontap's resources load), for `--from ontap`.

Each field follows the Trident file named beside it (read at the tag; nothing here is copied code):

- ontap-nas: one FlexVol per claim named by the nameTemplate (`internalName`), mounted at `/<name>`
  (storage_drivers/ontap/ontap_nas.go Create, CreateFollowup). Its comment is the backend's labels rendered with
  the volume's config and marshalled under "provisioning" (storage/storage_pool.go GetTemplatizedLabelsJSON:
  json.Marshal of a map, keys sorted, compacted; ontap_common.go ConstructLabelsFromConfigs; set as the
  volume's Comment in ontap_nas.go Create). A volume made while the backend had no labels has no comment.
- ontap-nas-economy: FlexVols `trident_qtree_pool_<prefix>_<10 letters>`, mounted at `/<flexvol>`, no comment
  (ontap_nas_qtree.go createFlexvolForQtree sets none); each claim a qtree named by the template (or
  `<prefix>_pvc_<uuid>` past 64 characters), with a tree quota of the claim's size (QuotaSetEntry, "tree");
  ONTAP lists each FlexVol's qtree 0 (the FlexVol itself, name "") too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

SVM_UUID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "svm_dsaas"))


def trident_comment(labels: Mapping[str, str], volume_config: Mapping[str, Any]) -> str:
    """The comment Trident writes for backend `labels` (templates `{{.volume.RequestName}}`,
    `{{.volume.Namespace}}` rendered from the TridentVolume's config)."""
    fields = {"RequestName": volume_config["requestName"], "Namespace": volume_config["namespace"]}
    rendered = {}
    for key, value in labels.items():
        for field, text in fields.items():
            value = value.replace("{{.volume." + field + "}}", str(text))
        rendered[key] = value
    return json.dumps({"provisioning": rendered}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _volume(name: str, svm: str, size: int, comment: str = "") -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "name": name,
        "type": "rw",
        "state": "online",
        "comment": comment,
        "space": {"size": size},
        "nas": {"path": f"/{name}"},
        "is_svm_root": False,
        "svm": {"name": svm, "uuid": SVM_UUID},
    }


def ontap_view(
    inventory: Mapping[str, Any], svm: str = "svm_dsaas", unlabelled: Iterable[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    """volumes, qtrees, quota-rules and connected-clients (none) for the inventory's TridentVolumes; the claims in
    `unlabelled` were made before the backend had labels (their FlexVol has no comment)."""
    unlabelled = set(unlabelled)
    backends = {b["backendUUID"]: b for b in inventory["tridentBackends"]["items"]}
    volumes: dict[str, dict[str, Any]] = {}
    qtrees: list[dict[str, Any]] = []
    quotas: list[dict[str, Any]] = []
    for tv in inventory["tridentVolumes"]["items"]:
        config = tv["config"]
        backend = backends[tv["backendUUID"]]["config"]["ontap_config"]
        size = int(config["size"])
        if "internalID" in config:  # economy: /svm/<svm>/flexvol/<flexvol>/qtree/<qtree>
            flexvol = config["internalID"].split("/")[4]
            if flexvol not in volumes:
                volumes[flexvol] = _volume(flexvol, svm, 1024**4)
                qtrees.append(_qtree(flexvol, svm, 0, ""))
            qtrees.append(_qtree(flexvol, svm, len(qtrees), config["internalName"]))
            quotas.append(
                {
                    "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"quota/{flexvol}/{config['internalName']}")),
                    "svm": {"name": svm, "uuid": SVM_UUID},
                    "volume": {"name": flexvol, "uuid": volumes[flexvol]["uuid"]},
                    "qtree": {"name": config["internalName"]},
                    "type": "tree",
                    "space": {"hard_limit": size},
                }
            )
        else:
            labels = backend.get("labels") if config["requestName"] not in unlabelled else None
            comment = trident_comment(labels, config) if labels else ""
            volumes[config["internalName"]] = _volume(config["internalName"], svm, size, comment)
    return {"volumes": list(volumes.values()), "qtrees": qtrees, "quota-rules": quotas, "connected-clients": []}


def _qtree(flexvol: str, svm: str, index: int, name: str) -> dict[str, Any]:
    return {
        "svm": {"name": svm, "uuid": SVM_UUID},
        "volume": {"name": flexvol, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, flexvol))},  # = _volume's uuid
        "id": index,
        "name": name,
        "path": f"/vol/{flexvol}" + (f"/{name}" if name else ""),
    }
