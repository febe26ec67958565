"""Try a stack's hub settings locally before `pulumi up`: branding, profiles, login and group rules.

    python -m tools.try_hub <stack>                          # against a throwaway OpenLDAP (default)
    python -m tools.try_hub <stack> --ldap-url ldaps://ad.example.org:636   # against your directory

The hub runs the configuration the program renders for the stack (hub.config, extraConfig, branding
files, profile list) in a real JupyterHub on 127.0.0.1, with a local-process spawner instead of
Kubernetes. With --ldap-url the stack's own LDAP settings are used against that server; the search
account's password comes from DSAAS_LDAP_SEARCH_PASSWORD. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from config.settings import SettingsError
from tools.lab.stack_hub import running_stack_hub
from tools.offline.mockgraph import StackFileError
from tools.preflight.ldap_check import SEARCH_PASSWORD_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.try_hub", description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument("--ldap-url", help="your directory (ldap://host:port or ldaps://host:port)")
    parser.add_argument("--config-dir", type=Path, help="folder of stack files (default: config/)")
    parser.add_argument(
        "--smoke", action="store_true", help="log the throwaway directory's first user in once, then stop (for CI)"
    )
    args = parser.parse_args(argv)
    if args.smoke and args.ldap_url:
        parser.error("--smoke uses the throwaway directory; leave out --ldap-url")
    with tempfile.TemporaryDirectory(prefix="dsaas-try-hub-") as workdir:
        try:
            with running_stack_hub(
                args.stack,
                Path(workdir),
                ldap_url=args.ldap_url,
                search_password=os.environ.get(SEARCH_PASSWORD_ENV),
                config_dir=args.config_dir,
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
