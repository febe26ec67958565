"""For operators: `python -m tools.restore plan <stack>` writes the reviewable restore plan of a lost cluster.

    python -m tools.restore plan <stack> [--from s3|ontap] [--inventory KEY] [--out FILE] [--config-dir D]
                                         [--unsigned] [--verify ontap] [--ontap-ca-file PEM]
                                         [--ontap-address HOST[:PORT]] [--ldap-ca-file PEM | --users FILE]
    python -m tools.restore reset-sessions jupyterhub.sqlite

--from s3 (default) reads `<prefix>/inventory/latest.json` (or --inventory <YYYYMMDDTHHMMSSZ>) from the
stack's dsaas:backup.objectStore; --from ontap asks the SVM of dsaas:storage.ontap through NetApp's REST
client for the stack's FlexVols and economy qtrees, and the directory (dsaas:hub.ldap, through the hub's own
authenticator) for every member of the allowed groups, or --users FILE (one hub user name a line); each user's
claim, as KubeSpawner 7 names it, is matched to the ONTAP comment label dsaas.io/claim or to the name Trident's
nameTemplate gave; what stays unmatched, volumes or users, is listed with what to do. --verify ontap
checks each planned home against ONTAP as it is now (exists, read-write, not the SVM root, the claim in its
comment, no NFS client connected) and flags what ONTAP contradicts. Writes
config/restore.<stack>.yaml (next to the stack files given with --config-dir), per user the claim name
KubeSpawner 7 computes now, the ONTAP volume or economy qtree, its size, and warnings.

reset-sessions gives every user of a downloaded hub database a new cookie_id before it is copied back, so
no login cookie made from an old dump names anyone (docs/restore.md, "Restoring the database").

The inventory must carry the cluster's signature (HMAC-SHA256 with the stack's inventory key, which only
the cluster and the Pulumi state hold): a changed, foreign or unsigned inventory is refused, and so is a
latest.json older than the newest inventory in its folder (a replay). --unsigned plans from it anyway and
says so in the plan.

Credentials come from the environment only: DSAAS_S3_ACCESS_KEY_ID and DSAAS_S3_SECRET_ACCESS_KEY, or
DSAAS_ONTAP_USERNAME and DSAAS_ONTAP_PASSWORD (and DSAAS_LDAP_SEARCH_PASSWORD for --from ontap unless --users
is given); the inventory key from DSAAS_INVENTORY_KEY:
    export DSAAS_INVENTORY_KEY="$(pulumi stack output inventorySigningKey --show-secrets --stack <old stack>)"
(the lost cluster's stack signed the inventory: a stack rebuilt under another name has a key of its own).

Exit status: 0 plan written, nothing to review; 1 plan written, some homes carry warnings (read them
before `pulumi up`); 2 no plan: the settings, the credentials or the source are broken (the message
says what to fix).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from config.restore_plan import shown as quoted
from config.settings import PROJECT_ROOT, Settings, SettingsError, parse_settings
from tools.dr import restore, signing, sources, verify
from tools.dr.sessions import reset_cookie_ids
from tools.lab.stack_hub import stack_settings_values
from tools.offline.mockgraph import StackFileError


def plan_file(stack: str, config_dir: Path | None) -> Path:
    return (config_dir or PROJECT_ROOT / "config") / f"restore.{stack}.yaml"


def run_plan(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        settings = parse_settings(stack_settings_values(args.stack, args.config_dir))
    except (SettingsError, StackFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        if args.source == "ontap":
            users = (
                sources.read_users_file(args.users)
                if args.users
                else sources.directory_users(settings, args.ldap_ca_file)
            )
            if not users:
                raise restore.PlanError(
                    "no hub user to match ONTAP's homes to: the directory admits nobody through the allowed groups "
                    "(check with `python -m tools.ldap_check`), or the --users file is empty"
                )
            homes, warnings, source = sources.ontap_homes(settings, users, args.ontap_ca_file, args.ontap_address)
            released = []
        elif args.users or args.ldap_ca_file:
            print("error: --users and --ldap-ca-file go with --from ontap", file=sys.stderr)
            return 2
        else:
            warnings = []
            key = None if args.unsigned else signing.signing_key(args.stack)  # before any download: fail early
            inventory, source = sources.read_s3_inventory(settings, args.inventory)
            source = trusted_source(settings, inventory, source, key, args, warnings)
            homes = restore.join_inventory(inventory)
            released = restore.released_volumes(inventory)
            cluster = inventory.get("cluster")
            if cluster != settings.cluster.cluster_name:
                warnings.append(
                    f"the inventory is of cluster {quoted(cluster)}, the stack's dsaas:clusterName is "
                    f"{settings.cluster.cluster_name!r}: check that this is the cluster to restore"
                )
        result = restore.plan(homes, settings, source, args.stack, warnings, released)
        if args.verify == "ontap":
            found = verify.read_ontap(settings, args.ontap_ca_file, args.ontap_address)
            contradicted = verify.cross_check(result, found)
            result["source"]["verifiedAgainst"] = f"ontap://{settings.storage.ontap.management_lif}/svm/{found['svm']}"
            if contradicted:
                result["warnings"].append(f"ONTAP contradicts {contradicted} home(s) of the plan: read their warnings")
    except restore.PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    refused = restore.unloadable(result, settings)
    if refused:
        # A planner bug or an input it does not yet flag: never write what `pulumi up` would refuse unannounced.
        print(
            "error: the plan would be refused by the program's own loader, and no warning says why:\n"
            + "\n".join(f"  - {line}" for line in refused[:10])
            + "\nFix: report this with the inventory; meanwhile plan from another inventory (--inventory).",
            file=sys.stderr,
        )
        return 2
    out = args.out or plan_file(args.stack, args.config_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(restore.render_plan(result), encoding="utf-8")
        summary = Path(restore.summary_file(str(out)))
        summary.write_text(restore.render_summary(result), encoding="utf-8")
    except OSError as error:
        print(f"error: cannot write the plan to {out}: {error.strerror}; choose another --out", file=sys.stderr)
        return 2
    review = restore.blocking(result)
    seconds = time.perf_counter() - started
    print(
        f"{len(result['homes'])} homes from {source.location} ({source.written or 'time unknown'}) in {seconds:.1f} s"
    )
    for warning in result["warnings"]:
        print(f"  ! {warning}")
    qtrees = restore.economy_homes(result)
    if qtrees:
        print(
            f"{qtrees} home(s) are economy qtrees: they come back as static NFS volumes (data LIF + junction "
            "path), retained, and `pulumi up` puts them on the stack's restored-homes export policy so the new "
            "nodes can mount them (it needs dsaas:ontapUsername/ontapPassword and reaches managementLif)"
        )
    print(f"{review} home(s) carry warnings to review" if review else "no home carries a warning")
    shown = out.relative_to(PROJECT_ROOT) if out.is_relative_to(PROJECT_ROOT) else out
    print(f"wrote {out} and, for the reviewer, {summary.name} beside it (one line per user, sorted by user)")
    print(f"review them, commit the plan and set dsaas:restore.plan: {shown}")
    return 1 if review or result["warnings"] else 0


def trusted_source(
    settings: Settings,
    inventory: dict[str, Any],
    source: restore.Source,
    key: bytes | None,
    args: argparse.Namespace,
    warnings: list[str],
) -> restore.Source:
    """The inventory checked as the cluster's own (issue 21, item 11): its signature with the stack's key, a
    timestamped object holding its own time's inventory, latest.json the newest one; `PlanError` otherwise."""
    written = source.written
    assert written is not None  # read_s3_inventory refuses an inventory without one
    if key is None:
        warnings.append(
            f"the inventory {source.location} was NOT checked against the stack's signature (--unsigned): nothing "
            "vouches that its homes are the cluster's; compare every entry with ONTAP before `pulumi up`"
        )
    else:
        signing.verify(inventory, key, source.location, args.stack)
        source = replace(source, signed_by=inventory["signature"]["keyId"])
    signing.check_object_time(source.location, written)
    if not args.inventory:
        warning = latest_is_newest(settings, source)
        if warning:
            warnings.append(warning)
    return source


def latest_is_newest(settings: Settings, source: restore.Source) -> str | None:
    """`PlanError` when the inventory folder holds a newer inventory than the one latest.json gave; a warning
    when the folder cannot be listed (the check is then the operator's)."""
    from botocore.exceptions import BotoCoreError, ClientError

    store = settings.backup.object_store
    assert store is not None and source.written is not None
    folder = f"{sources.store_prefix(settings)}/inventory"
    try:
        newest = signing.newest_stamp(sources.s3_client(store), store.bucket, folder)
    except (BotoCoreError, ClientError) as error:
        return (
            f"could not list s3://{store.bucket}/{folder}/ ({type(error).__name__}) to check that latest.json is "
            "the newest inventory: list it yourself, and plan from the newest with --inventory if it is newer"
        )
    signing.check_latest(newest, source.written, source.location)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.restore",
        description=__doc__.split("\n\n", 1)[0],
        # The subcommand's whole usage, so `python -m tools.restore --help` shows every flag.
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    planner = commands.add_parser("plan", help="write config/restore.<stack>.yaml from the inventory or ONTAP")
    planner.add_argument("stack")
    planner.add_argument("--from", dest="source", choices=("s3", "ontap"), default="s3", help="default: s3")
    planner.add_argument("--inventory", help="inventory to read: <YYYYMMDDTHHMMSSZ> or a whole key (default: latest)")
    planner.add_argument("--out", type=Path, help="plan file (default: restore.<stack>.yaml beside the stack files)")
    planner.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    planner.add_argument(
        "--unsigned",
        action="store_true",
        help=f"plan from an inventory without a valid signature (default: refused; key from {signing.KEY_ENV})",
    )
    planner.add_argument(
        "--verify",
        choices=("ontap",),
        help="also check every home against ONTAP now: exists, read-write, its comment's claim, no NFS client",
    )
    planner.add_argument("--ontap-ca-file", type=Path, help="PEM CA that signed ONTAP's certificate (--from ontap)")
    planner.add_argument("--ontap-address", help="HOST[:PORT] instead of the stack's managementLif (--from ontap)")
    who = planner.add_mutually_exclusive_group()
    who.add_argument("--ldap-ca-file", type=Path, help="PEM CA of the directory, instead of dsaas:hub.ldap.caFile")
    who.add_argument("--users", type=Path, help="hub user names, one a line, instead of asking the directory")
    sessions = commands.add_parser(
        "reset-sessions", help="give every user of a restored hub database (SQLite file) a new cookie_id"
    )
    sessions.add_argument("database", type=Path, help="the downloaded jupyterhub.sqlite, before it is copied back")
    args = parser.parse_args(argv)
    if args.command == "reset-sessions":
        return run_reset_sessions(args.database)
    return run_plan(args)


def run_reset_sessions(database: Path) -> int:
    try:
        count = reset_cookie_ids(database)
    except (OSError, sqlite3.Error) as error:
        print(f"cannot reset the sessions in {database}: {error}", file=sys.stderr)
        return 2
    print(f"{database}: {count} users get a new cookie_id; every old login cookie names no one now")
    return 0
