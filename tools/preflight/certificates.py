"""For operators: `python -m tools.certificates <stack>` shows every certificate the stack depends on, with the
date it ends, at once (issue 26, item 2).

    python -m tools.certificates <stack> [--config-dir D]

- The CA files the stack names (dsaas:hub.ldap.caFile, dsaas:storage.ontap.caFile,
  dsaas:backup.objectStore.caFile), read from the project.
- The hub's certificate chain, when DSAAS_HUB_TLS_CERTIFICATE holds it (it is a Pulumi secret the tool never
  decrypts itself):
      export DSAAS_HUB_TLS_CERTIFICATE="$(pulumi config get dsaas:hubTlsCertificate --stack <stack>)"
- kubeadm's certificates live on the control planes: the tool prints the command that lists them on each
  (`kubeadm certs check-expiration`); dsaas-renew-certs.timer renews them there from 60 days before the end.

A certificate within the preview's notice (30 days) is marked RENEW, a past one EXPIRED. Exit status: 0 all
have time; 1 one or more need renewing; 2 the stack cannot be read (the message says what to fix).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.model import EXPIRY_NOTICE_DAYS, project_file
from config.settings import SettingsError, parse_settings
from tools.lab.stack_hub import stack_settings_values
from tools.offline.mockgraph import StackFileError

HUB_CERTIFICATE_ENV = "DSAAS_HUB_TLS_CERTIFICATE"
# Where each CA file setting sits in the stack's values (dsaas:<section> then the path inside it).
CA_FILE_SETTINGS: dict[str, tuple[str, ...]] = {
    "dsaas:hub.ldap.caFile": ("dsaas:hub", "ldap", "caFile"),
    "dsaas:storage.ontap.caFile": ("dsaas:storage", "ontap", "caFile"),
    "dsaas:backup.objectStore.caFile": ("dsaas:backup", "objectStore", "caFile"),
}


@dataclass(frozen=True)
class Expiry:
    setting: str
    subject: str
    not_after: datetime.datetime

    def days_left(self, now: datetime.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def state(self, now: datetime.datetime) -> str:
        days = self.days_left(now)
        return "EXPIRED" if days < 0 else "RENEW" if days < EXPIRY_NOTICE_DAYS else "ok"


def _lookup(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _without(values: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = values
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def certificates_in(setting: str, pem: str) -> list[Expiry]:
    from cryptography import x509

    return [
        Expiry(setting, c.subject.rfc4514_string() or "(no subject)", c.not_valid_after_utc)
        for c in x509.load_pem_x509_certificates(pem.encode())
    ]


def collect(values: dict[str, Any], hub_chain: str | None) -> tuple[list[Expiry], list[str]]:
    """Every certificate the stack's values name (and the hub's chain when given); notes on what is not set."""
    found: list[Expiry] = []
    notes: list[str] = []
    for setting, path in CA_FILE_SETTINGS.items():
        relative = _lookup(values, path)
        if not relative:
            notes.append(f"{setting}: not set (the system's trust store is used)")
            continue
        try:
            found += certificates_in(setting, project_file(str(relative)).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            notes.append(f"{setting}: {relative} cannot be read as PEM certificates ({type(error).__name__})")
    if hub_chain:
        try:
            found += certificates_in("dsaas:hubTlsCertificate", hub_chain)
        except ValueError:
            notes.append(f"dsaas:hubTlsCertificate: {HUB_CERTIFICATE_ENV} holds no readable PEM certificate")
    else:
        notes.append(
            f'dsaas:hubTlsCertificate: not shown; export {HUB_CERTIFICATE_ENV}="$(pulumi config get '
            'dsaas:hubTlsCertificate --stack <stack>)" to include it (a stack with tls offload has none)'
        )
    return found, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.certificates", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    args = parser.parse_args(argv)
    try:
        values = stack_settings_values(args.stack, args.config_dir)
        # The nodes do not depend on the CA files: an expiring one must not hide the control planes' commands.
        nodes_only = stack_settings_values(args.stack, args.config_dir)
        for path in CA_FILE_SETTINGS.values():
            _without(nodes_only, path)
        settings = parse_settings(nodes_only)
    except (SettingsError, StackFileError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = datetime.datetime.now(datetime.UTC)
    found, notes = collect(values, os.environ.get(HUB_CERTIFICATE_ENV))
    print(f"certificates of stack {args.stack} on {now:%Y-%m-%d} (RENEW: within {EXPIRY_NOTICE_DAYS} days)")
    width = max([len(e.setting) for e in found] + [7])
    for expiry in sorted(found, key=lambda e: e.not_after):
        days = int(expiry.days_left(now))
        print(
            f"  {expiry.setting:<{width}}  {expiry.not_after:%Y-%m-%d %H:%M UTC}  {days:>6} days  "
            f"{expiry.state(now):<7}  {expiry.subject}"
        )
    for note in notes:
        print(f"  - {note}")
    user = settings.ssh.user
    print("kubeadm's certificates (one year each; dsaas-renew-certs.timer renews them from 60 days before):")
    for node in settings.control_planes:
        print(f"  ssh {user}@{node.address} sudo kubeadm certs check-expiration")
    return 1 if any(e.state(now) != "ok" for e in found) else 0
