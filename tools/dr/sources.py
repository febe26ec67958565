"""Where a restore plan's facts come from: the inventory in the object store, or ONTAP itself.

Credentials come from the environment only (never a command line, never a log):
DSAAS_S3_ACCESS_KEY_ID / DSAAS_S3_SECRET_ACCESS_KEY and DSAAS_ONTAP_USERNAME / DSAAS_ONTAP_PASSWORD.
Every failure becomes a `PlanError` that names the setting to change.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from components import hub_render
from config.backup import ObjectStoreSettings
from config.model import stack_key
from config.settings import Settings, project_file
from config.storage import NasDriver
from tools.dr.restore import Home, PlanError, Source, check_inventory, written_time

S3_KEY_ENV = "DSAAS_S3_ACCESS_KEY_ID"
S3_SECRET_ENV = "DSAAS_S3_SECRET_ACCESS_KEY"
ONTAP_USER_ENV = "DSAAS_ONTAP_USERNAME"
ONTAP_PASSWORD_ENV = "DSAAS_ONTAP_PASSWORD"
STORE_KEY = stack_key("backup", "objectStore")
ONTAP_KEY = stack_key("storage", "ontap")


def _env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise PlanError(f"{name} is not set: export the {what} in the environment (never on the command line)")
    return value


# --- the object store ---------------------------------------------------------------------------------


def store_prefix(settings: Settings) -> str:
    store = settings.backup.object_store
    return (store.prefix if store and store.prefix else settings.cluster.cluster_name).strip("/")


def inventory_key(settings: Settings, key: str | None) -> str:
    """The object to read: `latest.json` by default; a bare name (20261201T021500Z) is one inventory."""
    folder = f"{store_prefix(settings)}/inventory"
    if not key:
        return f"{folder}/latest.json"
    if "/" in key:
        return key
    return f"{folder}/{key if key.endswith('.json') else key + '.json'}"


def s3_client(store: ObjectStoreSettings) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    verify: str | bool = str(project_file(store.ca_file)) if store.ca_file else True
    return boto3.client(
        "s3",
        endpoint_url=str(store.endpoint).rstrip("/"),
        region_name=store.region,
        aws_access_key_id=_env(S3_KEY_ENV, "object store's access key id"),
        aws_secret_access_key=_env(S3_SECRET_ENV, "object store's secret access key"),
        verify=verify,
        config=BotoConfig(
            s3={"addressing_style": "path" if store.path_style else "virtual"},
            # Older ONTAP S3 releases reject the CRC checksums recent SDKs send by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 2},
            connect_timeout=10,
        ),
    )


def _explain_s3(error: Exception, store: ObjectStoreSettings, key: str) -> PlanError:
    from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

    where = f"s3://{store.bucket}/{key}"
    if isinstance(error, SSLError):
        return PlanError(
            f"TLS to {store.endpoint} failed ({error}): set {STORE_KEY}.caFile to the PEM CA that signed "
            "its certificate"
        )
    if isinstance(error, EndpointConnectionError):
        return PlanError(f"cannot reach {store.endpoint}: check {STORE_KEY}.endpoint (and that it is up)")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code"))
        if code in ("NoSuchKey", "404"):
            return PlanError(
                f"no inventory at {where}: has the inventory CronJob run? Is {STORE_KEY}.prefix right "
                f"(default: the cluster name)? Name one with --inventory <YYYYMMDDTHHMMSSZ>"
            )
        if code == "NoSuchBucket":
            return PlanError(f"bucket {store.bucket} does not exist: check {STORE_KEY}.bucket")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return PlanError(
                f"the object store refused the credentials ({code}): check {S3_KEY_ENV} and {S3_SECRET_ENV}, "
                f"and that they may read {where}"
            )
        return PlanError(f"the object store answered {code} for {where}: {error}")
    return PlanError(f"reading {where} failed: {type(error).__name__}: {error}")


def read_s3_inventory(settings: Settings, key: str | None = None) -> tuple[dict[str, Any], Source]:
    """The inventory object and where it was read from (the timestamped copy when latest.json names one)."""
    from botocore.exceptions import BotoCoreError, ClientError

    store = settings.backup.object_store
    if store is None:
        raise PlanError(
            f"{STORE_KEY} is not set, so there is no inventory to read: name the object store the backups went "
            "to, or plan from ONTAP itself with --from ontap"
        )
    object_key = inventory_key(settings, key)
    client = s3_client(store)
    try:
        body = client.get_object(Bucket=store.bucket, Key=object_key)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise _explain_s3(error, store, object_key) from None
    try:
        inventory = json.loads(body)
    except RecursionError:  # nesting deeper than Python recurses: no inventory the CronJob writes
        raise PlanError(f"s3://{store.bucket}/{object_key} nests too deep to be an inventory") from None
    except ValueError as error:
        raise PlanError(f"s3://{store.bucket}/{object_key} is not JSON ({str(error)[:200]})") from None
    check_inventory(inventory)
    written = written_time(inventory.get("written"))
    digest = hashlib.sha256(body).hexdigest()
    if object_key.endswith("/latest.json"):
        stamped = _stamped_key(object_key, written)
        if stamped:
            try:
                stamped_body = client.get_object(Bucket=store.bucket, Key=stamped)["Body"].read()
            except (BotoCoreError, ClientError):
                stamped_body = None  # no timestamped copy: the plan names latest.json and its digest
            if stamped_body is not None and hashlib.sha256(stamped_body).hexdigest() != digest:
                # The CronJob writes both from one document: a difference is a changed object (issue 21, item 11).
                raise PlanError(
                    f"s3://{store.bucket}/{object_key} says it was written {written}, but its contents differ from "
                    f"s3://{store.bucket}/{stamped}, the copy of that time: one of them was changed after the "
                    "CronJob wrote it. Do not plan from either before finding out who changed it; plan from "
                    "another inventory (--inventory <YYYYMMDDTHHMMSSZ>) or from ONTAP (--from ontap)"
                )
            if stamped_body is not None:
                object_key = stamped  # the same bytes: the plan names the copy that never changes
    return inventory, Source("s3", f"s3://{store.bucket}/{object_key}", written, digest)


def _stamped_key(latest_key: str, written: str) -> str | None:
    try:
        when = datetime.fromisoformat(written.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return latest_key.rsplit("/", 1)[0] + f"/{when:%Y%m%dT%H%M%SZ}.json"


# --- ONTAP --------------------------------------------------------------------------------------------

# What is read of each volume (ONTAP REST /api/storage/volumes).
VOLUME_FIELDS = "name,uuid,type,state,comment,space.size,nas.path,is_svm_root,svm.name"
QTREE_FIELDS = "name,id,path,volume.name,svm.name"
CLIENT_FIELDS = "client_ip,volume.name,svm.name,idle_duration"
_USER_KEYS = ("username", "user", "hub.jupyter.org/username")
_CLAIM_KEYS = ("claim", "pvc", "pvcName", "persistentVolumeClaim", "requestName")
_NAMESPACE_KEYS = ("namespace", "pvcNamespace", "persistentVolumeClaimNamespace")


def comment_labels(comment: str | None) -> dict[str, str]:
    """Trident's backend labels as it writes them into a volume's comment: {"provisioning": {...}}."""
    if not comment:
        return {}
    try:
        parsed = json.loads(comment)
    except (ValueError, RecursionError):
        return {}
    labels = parsed.get("provisioning", parsed) if isinstance(parsed, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def _first(labels: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def ontap_homes(
    settings: Settings, ca_file: Path | None = None, address: str | None = None
) -> tuple[list[Home], list[str], Source]:
    """Homes as ONTAP knows them: the SVM's volumes with the stack's storage prefix, their comments and state."""
    from netapp_ontap.error import NetAppRestError
    from netapp_ontap.host_connection import HostConnection
    from netapp_ontap.resources.nfs_clients import NfsClients
    from netapp_ontap.resources.qtree import Qtree
    from netapp_ontap.resources.volume import Volume

    ontap = settings.storage.ontap
    prefix = settings.storage.storage_prefix
    host, port = str(ontap.management_lif), 443
    if address:  # another endpoint than the stack's managementLif: HOST or HOST:PORT
        named, _, given = address.rpartition(":")
        host, port = (named, int(given)) if named and given.isdigit() else (address, 443)
    connection = HostConnection(
        host,
        username=_env(ONTAP_USER_ENV, "ONTAP user name"),
        password=_env(ONTAP_PASSWORD_ENV, "ONTAP password"),
        # Handed to requests as its `verify`: True (the system CAs) or a CA bundle's path.
        verify=cast(bool, str(ca_file) if ca_file else True),
        port=port,
        protocol_timeouts=(6, 60),
    )
    if ca_file:
        _pin_ca(connection.session, ca_file)
    try:
        with connection:
            volumes = list(Volume.get_collection(**_query(ontap.svm, name=f"{prefix}*", fields=VOLUME_FIELDS)))
            qtrees = list(
                Qtree.get_collection(**_query(ontap.svm, fields=QTREE_FIELDS, **{"volume.name": f"{prefix}*"}))
            )
            clients = list(NfsClients.get_collection(**_query(ontap.svm, fields=CLIENT_FIELDS)))
    except NetAppRestError as error:
        raise PlanError(_explain_ontap(error, host if address else None)) from None
    in_use: dict[str, set[str]] = {}
    for client in clients:
        volume = getattr(getattr(client, "volume", None), "name", None)
        if volume:
            in_use.setdefault(volume, set()).add(str(client.client_ip))
    homes: list[Home] = []
    warnings: list[str] = []
    unowned: list[str] = []
    for volume in sorted(volumes, key=lambda v: str(v.name)):
        labels = comment_labels(getattr(volume, "comment", None))
        claim = _first(labels, _CLAIM_KEYS)
        if claim is None:
            unowned.append(str(volume.name))
            continue
        home = Home(
            user=_first(labels, _USER_KEYS),
            claim=claim,
            namespace=_first(labels, _NAMESPACE_KEYS) or hub_render.HUB_NAMESPACE,
            driver=NasDriver.ONTAP_NAS,
            volume=str(volume.name),
            size_bytes=int(volume.space.size) if hasattr(volume, "space") and hasattr(volume.space, "size") else None,
        )
        if home.user is None:
            home.warnings.append(
                f"ONTAP's comment names claim {claim} but not its user: the plan keeps the old claim name, which is "
                "right only while the claim name template and slug scheme are unchanged"
            )
        _ontap_state(home, volume, in_use.get(str(volume.name), set()))
        homes.append(home)
    if unowned:
        warnings.append(
            f"{len(unowned)} volume(s) named {prefix}* carry no claim in their ONTAP comment (no backend "
            f"labels when they were made), so ONTAP cannot say whose they are: {', '.join(unowned[:10])}"
            f"{' ...' if len(unowned) > 10 else ''}; plan from the inventory instead (--from s3)"
        )
    owned_qtrees = [q for q in qtrees if str(getattr(q, "name", ""))]
    if owned_qtrees:
        warnings.append(
            f"{len(owned_qtrees)} economy qtree(s) in {prefix}* FlexVols: ONTAP keeps no comment on qtrees, so "
            "their owners are known only to the inventory; plan them with --from s3"
        )
    location = f"ontap://{ontap.management_lif}/svm/{ontap.svm}"
    return homes, warnings, Source("ontap", location, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _pin_ca(session: Any, ca_file: Path) -> None:
    """Verify with `ca_file` even where REQUESTS_CA_BUNDLE is set: requests lets that variable override a
    session's CA bundle (netapp-ontap's WrappedSession only protects verify=False)."""
    merge = session.merge_environment_settings

    def pinned(url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings: dict[str, Any] = merge(url, proxies, stream, verify, cert)
        settings["verify"] = str(ca_file)
        return settings

    session.merge_environment_settings = pinned


def _query(svm: str, **fields: str) -> dict[str, Any]:
    """ONTAP REST query parameters (the library passes unknown keyword arguments on as the query)."""
    return {"svm.name": svm, **fields}


def _ontap_state(home: Home, volume: Any, clients: set[str]) -> None:
    kind = str(getattr(volume, "type", "rw"))
    if kind == "dp":
        home.warnings.append(
            f"{home.volume} is a SnapMirror destination (type dp, read-only): Trident imports only read-write "
            f"volumes; break the relationship first (`snapmirror break -destination-path {volume.svm.name}:"
            f"{home.volume}` or PATCH /api/snapmirror/relationships state=broken_off)"
        )
    elif kind != "rw":
        home.warnings.append(f"{home.volume} is of type {kind}: Trident imports only read-write volumes")
    if str(getattr(volume, "state", "online")) != "online":
        home.warnings.append(f"{home.volume} is {volume.state}: bring it online before the import")
    if getattr(volume, "is_svm_root", False):
        home.warnings.append(f"{home.volume} is the SVM's root volume: never import it")
    path = getattr(getattr(volume, "nas", None), "path", None)
    if not path:
        home.warnings.append(
            f"{home.volume} has no junction path (not mounted in the SVM's namespace): NFS cannot reach it"
        )
    if clients:
        home.warnings.append(
            f"{home.volume} is still in use: NFS clients {', '.join(sorted(clients))} are connected "
            "(ONTAP /api/protocols/nfs/connected-clients); stop the old nodes before the new cluster mounts it"
        )


def _explain_ontap(error: Any, address: str | None) -> str:
    """What went wrong, and the setting to change (`address`: an --ontap-address in use instead)."""
    text = str(error)
    where = address or f"{ONTAP_KEY}.managementLif"
    status = getattr(getattr(error, "http_err_response", None), "http_response", None)
    code = getattr(status, "status_code", None)
    if code == 401:
        return f"ONTAP refused the credentials: check {ONTAP_USER_ENV} and {ONTAP_PASSWORD_ENV}"
    if code == 403:
        return f"the ONTAP account in {ONTAP_USER_ENV} may not read volumes: give it a role that reads /api/storage"
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
        return (
            f"TLS to ONTAP ({where}) failed: its certificate is not signed by a CA this machine trusts; give "
            "the CA that signed it with --ontap-ca-file"
        )
    if "Connection" in text or "Max retries" in text:
        return f"cannot reach ONTAP ({where}): check {ONTAP_KEY}.managementLif and that the LIF allows HTTPS"
    return f"ONTAP answered an error: {text}"
