"""Where a restore plan's facts come from: the inventory in the object store, or ONTAP itself.

Credentials come from the environment only (never a command line, never a log):
DSAAS_S3_ACCESS_KEY_ID / DSAAS_S3_SECRET_ACCESS_KEY and DSAAS_ONTAP_USERNAME / DSAAS_ONTAP_PASSWORD.
Every failure becomes a `PlanError` that names the setting to change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from components import hub_render
from config.backup import ObjectStoreSettings
from config.model import stack_key
from config.settings import Settings, project_file
from config.storage import NasDriver
from tools.dr.restore import (
    Home,
    PlanError,
    Qtree,
    Source,
    check_inventory,
    kubespawner_claim_name,
    name_scheme,
    written_time,
)

S3_KEY_ENV = "DSAAS_S3_ACCESS_KEY_ID"
S3_SECRET_ENV = "DSAAS_S3_SECRET_ACCESS_KEY"
ONTAP_USER_ENV = "DSAAS_ONTAP_USERNAME"
ONTAP_PASSWORD_ENV = "DSAAS_ONTAP_PASSWORD"
STORE_KEY = stack_key("backup", "objectStore")
ONTAP_KEY = stack_key("storage", "ontap")
LDAP_KEY = stack_key("hub", "ldap")


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
QUOTA_FIELDS = "qtree.name,volume.name,type,space.hard_limit"
CLIENT_FIELDS = "client_ip,volume.name,svm.name,idle_duration"
# The comment labels the program sets on its ontap-nas backend (components/trident_render.py VOLUME_LABELS).
CLAIM_LABEL = "dsaas.io/claim"
NAMESPACE_LABEL = "dsaas.io/namespace"
# GetVolumeNameFromTemplate's sanitizing (NetApp/trident v26.06.0 storage_drivers/ontap/ontap_common.go:
# volumeCharRegex `[^a-zA-Z0-9_]` -> `_`, runs of `_` collapsed, `_` trimmed at both ends).
_NOT_ONTAP = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
# `{{slice .volume.Name 4 9}}`: five characters of the PV's UUID (the CSI name pvc-<uuid>), so hex digits.
_UUID_TAIL = re.compile(r"_(?P<tail>[0-9a-f]{5})$")
# A name Trident made without the template (none set yet, or a qtree name past 64 characters): `<prefix>_pvc_<uuid>`
# (storage_drivers/common.go GetCommonInternalVolumeName `<prefix>-<pvc-uuid>`, then `-` -> `_`).
_UUID_NAMED = re.compile(r"pvc_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}$")
# Trident renames a deleted qtree `deleted_<name>_<random>` and keeps it until its recovery (ontap_nas_qtree.go).
DELETED_QTREE_PREFIX = "deleted_"
# How many names a listing shows before "... and N more".
_LISTED = 20


def ontap_name(text: str) -> str:
    """A rendered name template as Trident turns it into an ONTAP name (GetVolumeNameFromTemplate)."""
    return _UNDERSCORES.sub("_", _NOT_ONTAP.sub("_", text)).strip("_")


def template_stem(prefix: str, namespace: str, claim: str) -> str:
    """The part of the ONTAP name the project's nameTemplate (trident_render.VOLUME_NAME_TEMPLATE) gives a
    claim, before `_<5 characters of the PV UUID>`. Only a key: `-` and `.` both became `_`, so two claims may
    share it, and a claim cannot be read back from it."""
    return ontap_name(f"{prefix}_{namespace}_{claim}")


def economy_pool_prefix(prefix: str) -> str:
    """`trident_qtree_pool_<storagePrefix>_`, the start of every economy FlexVol (ontap_nas_qtree.go Initialize:
    artifactPrefix "trident" under Kubernetes, `-` -> `_`, `__` -> `_`, then RandomString(10) is appended)."""
    return f"trident_qtree_pool_{prefix}_".replace("-", "_").replace("__", "_")


def comment_labels(comment: str | None) -> dict[str, str]:
    """Trident's backend labels as it writes them into a volume's comment: {"provisioning": {...}}
    (storage/storage_pool.go GetTemplatizedLabelsJSON under storage.ProvisioningLabelTag, set as the FlexVol's
    Comment by ontap_nas.go Create through ontap_common.go ConstructLabelsFromConfigs)."""
    if not comment:
        return {}
    try:
        parsed = json.loads(comment)
    except (ValueError, RecursionError):
        return {}
    labels = parsed.get("provisioning") if isinstance(parsed, Mapping) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


@dataclass(frozen=True)
class OntapFacts:
    """What ONTAP's REST API answered, as plain records (the JSON of each record, netapp-ontap's `to_dict()`)."""

    volumes: list[dict[str, Any]]
    """The stack's ontap-nas FlexVols (`<prefix>*`) and economy FlexVols (`trident_qtree_pool_<prefix>_*`)."""
    qtrees: list[dict[str, Any]]
    quota_rules: list[dict[str, Any]]
    clients: list[dict[str, Any]]


def _get(record: Mapping[str, Any], dotted: str) -> Any:
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _listed(names: list[str]) -> str:
    shown_ = ", ".join(names[:_LISTED])
    return shown_ + (f" ... and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def match_ontap(facts: OntapFacts, users: list[str], settings: Settings) -> tuple[list[Home], list[str]]:
    """Homes from what ONTAP holds, matched to the hub users of the directory by the claim name KubeSpawner 7
    gives each of them now; what stays unmatched is listed in the warnings, each with what to do.

    An ontap-nas FlexVol names its claim exactly in its comment (`dsaas.io/claim`, `dsaas.io/namespace`) when the
    backend labels were on at its creation; otherwise, and for every economy qtree (ONTAP keeps no comment on a
    qtree), the name the nameTemplate gave it is matched against each user's claim as Trident would have
    sanitized it. A name Trident made without the template (`<prefix>_pvc_<uuid>`: a volume older than the
    template, or an economy name past 64 characters) names no claim: it is listed for a person to decide."""
    prefix = settings.storage.storage_prefix
    namespace = hub_render.HUB_NAMESPACE
    scheme = name_scheme(settings)
    data_lif = str(settings.storage.ontap.data_lif)
    by_claim: dict[str, list[str]] = defaultdict(list)
    by_stem: dict[str, list[str]] = defaultdict(list)
    claims: dict[str, str] = {}
    for user in users:
        claim = kubespawner_claim_name(user, scheme)
        claims[user] = claim
        by_claim[claim].append(user)
        by_stem[template_stem(prefix, namespace, claim)].append(user)
    in_use: dict[str, set[str]] = defaultdict(set)
    for client in facts.clients:
        volume = _get(client, "volume.name")
        if volume:
            in_use[str(volume)].add(str(client.get("client_ip")))
    pool = economy_pool_prefix(prefix)
    flexvols = {str(v.get("name")): v for v in facts.volumes}
    sizes = {
        (str(_get(r, "volume.name")), str(_get(r, "qtree.name"))): _get(r, "space.hard_limit")
        for r in facts.quota_rules
        if r.get("type") == "tree"
    }
    homes: list[Home] = []
    unmatched: list[str] = []
    others: list[str] = []
    # Claims the pinned template can make start with its text before the first field (claim-{username}: "claim-").
    # Anything else on the stack's backends (the hub database, general-purpose claims) is no home.
    home_claim = scheme.pvc_name_template.split("{", 1)[0]
    home_stem = template_stem(prefix, namespace, home_claim) if home_claim else ""

    def not_a_home(name: str, labelled: str | None) -> bool:
        if labelled is not None:
            return not labelled.startswith(home_claim)
        if _UUID_NAMED.search(name):
            return False  # named without the template: whose it is, nobody can say from ONTAP
        return bool(home_stem) and not name.startswith(home_stem)

    deleted: list[str] = []
    found: set[str] = set()

    def by_name(name: str) -> list[str]:
        tail = _UUID_TAIL.search(name)
        return list(by_stem.get(name[: tail.start()], [])) if tail else []

    def owned(home_users: list[str], home: Home, how: str) -> Home:
        if len(home_users) > 1:
            home.warnings.append(
                f"{how} fits the claims of {len(home_users)} users ({_listed([repr(u) for u in home_users])}): "
                "Trident's name keeps no '-' or '.', so it cannot tell them apart; look into the volume "
                "(owner uid of its files) and keep the entry of its owner"
            )
        found.update(home_users)
        return home

    for name, volume in sorted(flexvols.items()):
        if name.startswith(pool):
            continue  # an economy FlexVol: its qtrees are the homes
        labels = comment_labels(volume.get("comment"))
        labelled = labels.get(CLAIM_LABEL)
        home_users = list(by_claim.get(labelled, [])) if labelled else by_name(name)
        if not home_users and not_a_home(name, labelled):
            others.append(name + (f" (claim {labelled})" if labelled else ""))
            continue
        if not home_users and not labelled:
            unmatched.append(name)
            continue
        size = _get(volume, "space.size")
        home = Home(
            user=home_users[0] if home_users else None,
            claim=labelled or claims[home_users[0]],
            namespace=labels.get(NAMESPACE_LABEL) or namespace,
            driver=NasDriver.ONTAP_NAS,
            volume=name,
            size_bytes=int(size) if isinstance(size, int) and not isinstance(size, bool) else None,
        )
        if home.user is None:
            home.warnings.append(
                f"ONTAP's comment names claim {labelled}, but no member of the allowed groups gets that claim now: "
                "a user who left the groups, was renamed, or whose name the slug scheme now changes. Restore it "
                "under its old claim (who logs in with a name that gives it finds it) or skip it with a reason"
            )
        if home.namespace != namespace:
            home.warnings.append(
                f"ONTAP's comment names namespace {home.namespace}; the hub's claims live in {namespace}: "
                "this volume was not a hub home"
            )
        homes.append(owned(home_users, home, f"volume {name}"))
        _ontap_state(home, volume, in_use.get(name, set()))
    for qtree in sorted(facts.qtrees, key=lambda q: (str(_get(q, "volume.name")), str(q.get("name")))):
        flexvol_name, qtree_name = str(_get(qtree, "volume.name")), str(qtree.get("name") or "")
        if not qtree_name or not flexvol_name.startswith(pool):
            continue  # qtree 0 is the FlexVol itself
        if qtree_name.startswith(DELETED_QTREE_PREFIX):
            deleted.append(f"{flexvol_name}/{qtree_name}")
            continue
        home_users = by_name(qtree_name)
        if not home_users and not_a_home(qtree_name, None):
            others.append(f"{flexvol_name}/{qtree_name}")
            continue
        if not home_users:
            unmatched.append(f"{flexvol_name}/{qtree_name}")
            continue
        flexvol = flexvols.get(flexvol_name, {})
        junction = _get(flexvol, "nas.path")
        limit = sizes.get((flexvol_name, qtree_name))
        home = Home(
            user=home_users[0],
            claim=claims[home_users[0]],
            namespace=namespace,
            driver=NasDriver.ONTAP_NAS_ECONOMY,
            volume=flexvol_name,
            qtree=Qtree(flexvol_name, qtree_name, f"{str(junction).rstrip('/')}/{qtree_name}" if junction else ""),
            data_lif=data_lif,
            size_bytes=int(limit) if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None,
        )
        if home.size_bytes is None:
            home.warnings.append(
                f"qtree {flexvol_name}/{qtree_name} has no tree quota (Trident sets one as the claim's size): "
                "set sizeBytes to the size the home should have"
            )
        homes.append(owned(home_users, home, f"qtree {flexvol_name}/{qtree_name}"))
        if flexvol:
            _ontap_state(home, flexvol, in_use.get(flexvol_name, set()))
        else:
            home.warnings.append(f"ONTAP listed qtree {qtree_name} but not its FlexVol {flexvol_name}")
    warnings: list[str] = []
    if unmatched:
        warnings.append(
            f"{len(unmatched)} volume(s) or qtree(s) of the stack match no member of the allowed groups: "
            f"{_listed(unmatched)}. A name without the claim (`{prefix}_pvc_<uuid>`) was "
            "made before the name template or was too long for a qtree; a name with a claim belongs to someone "
            "no longer in the groups. Mount it read-only, find the owner (the uid of its files), and add an "
            "entry by hand, or leave it on ONTAP"
        )
    if others:
        warnings.append(
            f"{len(others)} volume(s) of the stack are named for claims the template {scheme.pvc_name_template!r} "
            f"never makes (the hub database, general-purpose claims): {_listed(others)}; not planned as homes"
        )
    if deleted:
        warnings.append(
            f"{len(deleted)} qtree(s) Trident deleted and keeps for recovery: {_listed(deleted)}; not planned"
        )
    homeless = sorted(user for user in users if user not in found)
    if homeless:
        warnings.append(
            f"{len(homeless)} member(s) of the allowed groups have no volume or qtree named for their claim: "
            f"{_listed([repr(u) for u in homeless])}. New since the disaster, never logged in, or their home is "
            "among the unmatched names above; without an entry they get an empty home at their first login"
        )
    return homes, warnings


def ontap_connection(settings: Settings, ca_file: Path | None, address: str | None) -> tuple[Any, str]:
    """NetApp's client for the stack's SVM (or `address`, HOST or HOST:PORT, another endpoint than its
    managementLif), credentials from the environment, the CA pinned when given; and the host it dials."""
    from netapp_ontap.host_connection import HostConnection

    host, port = str(settings.storage.ontap.management_lif), 443
    if address:
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
    return connection, host


def read_ontap(settings: Settings, ca_file: Path | None = None, address: str | None = None) -> tuple[OntapFacts, str]:
    """The stack's FlexVols, economy qtrees, their tree quotas and NFS clients, read through netapp-ontap."""
    from netapp_ontap.error import NetAppRestError
    from netapp_ontap.resources.nfs_clients import NfsClients
    from netapp_ontap.resources.qtree import Qtree as OntapQtree
    from netapp_ontap.resources.quota_rule import QuotaRule
    from netapp_ontap.resources.volume import Volume

    ontap = settings.storage.ontap
    prefix = settings.storage.storage_prefix
    pool = economy_pool_prefix(prefix)
    connection, host = ontap_connection(settings, ca_file, address)

    def records(resources: Any) -> list[dict[str, Any]]:
        return [dict(resource.to_dict()) for resource in resources]

    try:
        with connection:
            volumes = records(Volume.get_collection(**_query(ontap.svm, name=f"{prefix}*", fields=VOLUME_FIELDS)))
            volumes += records(Volume.get_collection(**_query(ontap.svm, name=f"{pool}*", fields=VOLUME_FIELDS)))
            qtrees = records(
                OntapQtree.get_collection(**_query(ontap.svm, fields=QTREE_FIELDS, **{"volume.name": f"{pool}*"}))
            )
            quotas = records(
                QuotaRule.get_collection(
                    **_query(ontap.svm, fields=QUOTA_FIELDS, type="tree", **{"volume.name": f"{pool}*"})
                )
            )
            clients = records(NfsClients.get_collection(**_query(ontap.svm, fields=CLIENT_FIELDS)))
    except NetAppRestError as error:
        raise PlanError(_explain_ontap(error, host if address else None)) from None
    # `<prefix>*` also matches nothing of the pool (it starts with "trident_"), so no FlexVol is read twice.
    return OntapFacts(volumes, qtrees, quotas, clients), f"ontap://{ontap.management_lif}/svm/{ontap.svm}"


def ontap_homes(
    settings: Settings, users: list[str], ca_file: Path | None = None, address: str | None = None
) -> tuple[list[Home], list[str], Source]:
    """Homes as ONTAP knows them, matched to `users` (the hub users the directory admits now)."""
    facts, location = read_ontap(settings, ca_file, address)
    homes, warnings = match_ontap(facts, users, settings)
    return homes, warnings, Source("ontap", location, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


# --- the directory ------------------------------------------------------------------------------------


def read_users_file(path: Path) -> list[str]:
    """Hub user names, one a line (`#` starts a comment): the directory's answer when it cannot be asked."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"cannot read the user list {path}: {error}") from None
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return sorted({name for name in names if name})


def directory_users(settings: Settings, ca_file: Path | None = None) -> list[str]:
    """Every hub user the directory admits now: each entry under the user search base (or under each bind DN
    template's parent) named as the hub names it at login, kept where the hub's own authenticator, configured
    from the stack, finds it in an allowed or admin group (nested groups, memberOf, AD primary groups alike)."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    from tools.preflight.ldap_check import SEARCH_PASSWORD_ENV, authenticator_for, hub_module

    password = _env(SEARCH_PASSWORD_ENV, "directory search account's password")
    authenticator = authenticator_for(settings, password, ca_file)
    module = hub_module()
    if not authenticator.search_user:
        raise PlanError(
            f"{LDAP_KEY}.searchUser is not set: listing the allowed groups' members needs the search "
            "account; give the hub users in a file instead (--users FILE, one name a line)"
        )
    if authenticator.lookup_dn:
        bases = [(str(authenticator.user_search_base), ldap3.SUBTREE, str(authenticator.user_attribute))]
    else:
        bases = [
            (module["dn_parent"](str(t)), ldap3.LEVEL, str(t).split("=", 1)[0].strip())
            for t in authenticator.bind_dn_template
        ]

    def entries(conn: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for base, scope, attribute in bases:
            for entry in conn.extend.standard.paged_search(
                base, f"({attribute}=*)", scope, attributes=[attribute], paged_size=500, generator=True
            ):
                if entry.get("type") != "searchResEntry":
                    continue
                value = entry.get("attributes", {}).get(attribute)
                value = value[0] if isinstance(value, list) and value else value
                if isinstance(value, str) and value:
                    found.append((str(entry["dn"]), value))
        return found

    admitted: set[str] = set()
    try:
        for dn, value in authenticator.with_search(entries):
            name, _ = authenticator.login_name(value)
            if name is None:
                continue  # no name a login can give (JupyterHub would refuse it at the door)
            verdict = authenticator.recheck(name, None if authenticator.lookup_dn else dn)
            if verdict is not None and verdict.allowed and not verdict.reason:
                admitted.add(name)
    except (LDAPException, module["ConfigurationError"], module["DirectoryUnusableError"]) as error:
        raise PlanError(
            f"reading the directory failed: {error}; check it with `python -m tools.ldap_check <stack> <user>`, "
            "or give the hub users in a file (--users FILE)"
        ) from None
    finally:
        authenticator.close_connections()
    return sorted(admitted)


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


def _ontap_state(home: Home, volume: Mapping[str, Any], clients: set[str]) -> None:
    """What would stop an import or a mount, from the FlexVol's record (a qtree's: its FlexVol's)."""
    name = str(volume.get("name"))
    kind = str(volume.get("type") or "rw")
    if kind == "dp":
        home.warnings.append(
            f"{name} is a SnapMirror destination (type dp, read-only): Trident imports only read-write "
            f"volumes; break the relationship first (`snapmirror break -destination-path {_get(volume, 'svm.name')}:"
            f"{name}` or PATCH /api/snapmirror/relationships state=broken_off)"
        )
    elif kind != "rw":
        home.warnings.append(f"{name} is of type {kind}: Trident imports only read-write volumes")
    if str(volume.get("state") or "online") != "online":
        home.warnings.append(f"{name} is {volume.get('state')}: bring it online before the import")
    if volume.get("is_svm_root"):
        home.warnings.append(f"{name} is the SVM's root volume: never import it")
    if not _get(volume, "nas.path"):
        home.warnings.append(f"{name} has no junction path (not mounted in the SVM's namespace): NFS cannot reach it")
    if clients:
        home.warnings.append(
            f"{name} is still in use: NFS clients {', '.join(sorted(clients))} are connected "
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
