"""Try a stack's hub settings locally before `pulumi up`: branding, profiles, login and group rules.

    python -m tools.try_hub <stack>                          # against a throwaway OpenLDAP (default)
    python -m tools.try_hub <stack> --ldap-url ldaps://ad.example.org:636   # against your directory
    python -m tools.try_hub <stack> --stack-server --ca-file corp-ca.pem    # the directory the stack names

The hub runs the configuration the program renders for the stack (hub.config, extraConfig, branding
files, profile list) in a real JupyterHub on 127.0.0.1, with a local-process spawner instead of
Kubernetes. With --ldap-url the stack's own LDAP settings are used against that server; the search
account's password comes from DSAAS_LDAP_SEARCH_PASSWORD. Stop it with Ctrl-C.

NO ISOLATION: every user server is a plain local process of the account that runs this command, with its
files, keys and network. Whoever can log in (with --ldap-url: anyone the stack's group rules admit from your
directory) and reach 127.0.0.1 (every local account) gets a terminal as you. Run it as an unprivileged user
on a machine of your own; it refuses to run as root unless --allow-root (or --smoke,
which stops after one scripted login).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import signal
import sys
import tempfile
import threading
from pathlib import Path

from config.settings import SettingsError
from tools.lab.directory import SLAPD
from tools.lab.hub import PROXY_BIN
from tools.lab.stack_hub import running_stack_hub
from tools.offline.mockgraph import StackFileError
from tools.preflight.ldap_check import SEARCH_PASSWORD_ENV, check_ca_flag


def isolation_warning(account: str, ldap_url: str | None) -> str:
    """What the operator must read before anyone logs in: the spawner is the lab's local-process one."""
    who = (
        f"anyone the stack's group rules admit from {ldap_url}"
        if ldap_url
        else "anyone with the throwaway accounts listed below"
    )
    return (
        f"WARNING: NO ISOLATION. Each user server is a local process running as {account!r} on this machine "
        f"(your files, keys and network), not a pod. {who} who can reach 127.0.0.1 gets a terminal as "
        f"{account!r}. Stop it (Ctrl-C) as soon as you are done."
    )


def root_problem(euid: int, allow_root: bool, smoke: bool = False) -> str | None:
    """Why this must not run as root, or None: a login would be a root shell for any directory user.
    --smoke is exempt: the hub lives for one scripted login of a throwaway account, then stops (CI
    containers run as root)."""
    if euid != 0 or allow_root or smoke:
        return None
    return (
        "refusing to run as root: user servers are local processes of this account, so every login would be a "
        "root shell on this machine. Run it as an unprivileged user (or pass --allow-root on a disposable machine)."
    )


def _account() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def missing_prerequisites(
    throwaway_directory: bool, proxy_bin: Path | None = None, slapd: str | None = None
) -> str | None:
    """One line naming what `make setup` would have installed, before anything starts (a fresh clone after
    `make preview` has the virtualenv but not the hub's proxy, nor slapd for the throwaway directory)."""
    proxy_bin = proxy_bin or PROXY_BIN
    slapd = slapd or SLAPD
    missing = []
    if not proxy_bin.exists():
        missing.append(f"the hub's proxy ({proxy_bin})")
    if throwaway_directory and not Path(slapd).exists():
        missing.append(f"slapd ({slapd}) for the throwaway directory")
    if not missing:
        return None
    verb = "are" if len(missing) > 1 else "is"
    return f"{' and '.join(missing)} {verb} not installed. Fix: run `make setup` once (it installs what try_hub runs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.try_hub",
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n")[-1].strip(),
    )
    parser.add_argument("stack")
    parser.add_argument("--ldap-url", help="your directory (ldap://host:port or ldaps://host:port)")
    parser.add_argument(
        "--stack-server",
        action="store_true",
        help="your directory as the stack names it (its serverAddress, serverPort, tlsStrategy, caFile)",
    )
    parser.add_argument(
        "--ca-file", type=Path, help="the PEM CA bundle of your directory, instead of the stack's caFile"
    )
    parser.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    parser.add_argument(
        "--smoke", action="store_true", help="log the throwaway directory's first user in once, then stop (for CI)"
    )
    parser.add_argument(
        "--allow-root",
        action="store_true",
        help="run even as root (every login is then a root shell: only on a disposable machine)",
    )
    args = parser.parse_args(argv)
    if args.smoke and (args.ldap_url or args.stack_server):
        parser.error("--smoke uses the throwaway directory; leave out --ldap-url and --stack-server")
    if args.ldap_url and args.stack_server:
        parser.error("--ldap-url and --stack-server both name the directory: give one")
    if args.ca_file is not None and not (args.ldap_url or args.stack_server):
        parser.error("--ca-file is your directory's CA: give it with --ldap-url or --stack-server")
    if args.ca_file is not None:
        try:
            check_ca_flag(args.ca_file)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    problem = root_problem(os.geteuid(), args.allow_root, args.smoke) or missing_prerequisites(
        throwaway_directory=not (args.ldap_url or args.stack_server)
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(
        isolation_warning(_account(), args.ldap_url or ("the stack's server" if args.stack_server else None)),
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="dsaas-try-hub-") as workdir:
        try:
            with running_stack_hub(
                args.stack,
                Path(workdir),
                ldap_url=args.ldap_url,
                search_password=os.environ.get(SEARCH_PASSWORD_ENV),
                config_dir=args.config_dir,
                stack_server=args.stack_server,
                ca_file=args.ca_file,
            ) as (hub, directory):
                print(f"Hub for stack {args.stack!r}: {hub.url}/hub/login")
                print(f"Hub log: {hub.log_path}")
                if directory is not None:
                    print(f"Throwaway directory {directory.ldap_url} (StartTLS) / {directory.ldaps_url}; accounts:")
                    for user in directory.users.values():
                        groups = ", ".join(g.split(",", 1)[0] for g in user.groups) or "no group"
                        print(f"    {user.name:<6} password {user.password:<20} {groups}")
                if args.smoke:
                    assert directory is not None
                    first = next(iter(directory.users.values()))
                    response = hub.session().login(first.name, first.password)
                    names = ", ".join(p["display_name"] for p in hub.profile_list)
                    print(f"smoke: login of {first.name} -> HTTP {response.status}; profiles: {names}")
                    return 0 if response.status == 302 else 1
                print("Ctrl-C stops the hub (and the throwaway directory).")
                stopped = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stopped.set())
                with contextlib.suppress(KeyboardInterrupt):
                    stopped.wait()
        except (SettingsError, StackFileError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
