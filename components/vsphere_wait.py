"""Wait until the program-built template VM has powered itself off, which it does only after a bake
that worked (components/templates/bake-template.sh). Run by pulumi-command on the operator's machine as
`.venv/bin/python -m components.vsphere_wait`, with its inputs in the environment (the vCenter password
among them, so never on a command line):

    DSAAS_VSPHERE_SERVER, DSAAS_VSPHERE_USER, DSAAS_VSPHERE_PASSWORD, DSAAS_VSPHERE_INSECURE ("true"/"false"),
    DSAAS_VM_UUID, DSAAS_VM_NAME, DSAAS_TIMEOUT_MINUTES, DSAAS_POLL_SECONDS (default 15).

Exit 0 once the VM is powered off; 1 with one line naming the VM, what happened and what to do otherwise.
Uses pyVmomi, VMware's own Python SDK (the vSphere Web Services API terraform-provider-vsphere also uses).
"""

from __future__ import annotations

import os
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

LOG = "/var/log/dsaas-bake.log"


class WaitError(RuntimeError):
    """The template did not become ready; the message says why and what to do."""


@dataclass(frozen=True)
class WaitSettings:
    server: str
    user: str
    password: str
    insecure: bool
    vm_uuid: str
    vm_name: str
    timeout_s: float
    poll_s: float

    @staticmethod
    def from_environment(env: Mapping[str, str]) -> WaitSettings:
        missing = [
            key
            for key in (
                "DSAAS_VSPHERE_SERVER",
                "DSAAS_VSPHERE_USER",
                "DSAAS_VSPHERE_PASSWORD",
                "DSAAS_VM_UUID",
                "DSAAS_VM_NAME",
                "DSAAS_TIMEOUT_MINUTES",
            )
            if not env.get(key)
        ]
        if missing:
            raise WaitError(
                f"the environment lacks {', '.join(missing)} (the program sets them; run it through pulumi)"
            )
        host = env["DSAAS_VSPHERE_SERVER"]
        return WaitSettings(
            server=host,
            user=env["DSAAS_VSPHERE_USER"],
            password=env["DSAAS_VSPHERE_PASSWORD"],
            insecure=env.get("DSAAS_VSPHERE_INSECURE", "false") == "true",
            vm_uuid=env["DSAAS_VM_UUID"],
            vm_name=env["DSAAS_VM_NAME"],
            timeout_s=float(env["DSAAS_TIMEOUT_MINUTES"]) * 60,
            poll_s=float(env.get("DSAAS_POLL_SECONDS", "15")),
        )


def _host_and_port(server: str) -> tuple[str, int]:
    """`vcenter.example.org`, `vcenter.example.org:8443` or a vcsim URL `https://u:p@127.0.0.1:4000/sdk`."""
    rest = server.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host, int(port)
    return rest, 443


def connect(settings: WaitSettings) -> vim.ServiceInstance:
    host, port = _host_and_port(settings.server)
    try:
        service: vim.ServiceInstance = SmartConnect(  # type: ignore[no-untyped-call]
            host=host,
            port=port,
            user=settings.user,
            pwd=settings.password,
            disableSslCertValidation=settings.insecure,
        )
        return service
    except vim.fault.InvalidLogin:
        raise WaitError(
            f"vCenter {host} refused the login of {settings.user}: check vsphere:user and the secret vsphere:password"
        ) from None
    except ssl.SSLError as error:
        raise WaitError(
            f"vCenter {host}'s certificate is not trusted ({error.reason}): add its CA to the system's trust store "
            "(labs only: dsaas:vsphere.allowUnverifiedSsl)"
        ) from None
    except OSError as error:
        raise WaitError(f"vCenter {host}:{port} cannot be reached ({error}); check vsphere:vsphereServer") from None


def wait_powered_off(
    settings: WaitSettings,
    connect_to: Callable[[WaitSettings], vim.ServiceInstance] = connect,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Seconds waited until the VM `vm_uuid` reports poweredOff; a WaitError on a missing VM or the timeout."""
    service = connect_to(settings)
    try:
        started = clock()
        while True:
            index = service.content.searchIndex
            assert index is not None, "a vCenter always has a search index"
            vm = index.FindByUuid(None, settings.vm_uuid, True, False)
            if vm is None:
                raise WaitError(
                    f"the template VM {settings.vm_name} ({settings.vm_uuid}) is gone from vCenter; run `pulumi up` "
                    "again to deploy it anew"
                )
            if vm.runtime.powerState == vim.VirtualMachine.PowerState.poweredOff:
                return clock() - started
            waited = clock() - started
            if waited >= settings.timeout_s:
                raise WaitError(
                    f"the template VM {settings.vm_name} is still {vm.runtime.powerState} after "
                    f"{waited / 60:.0f} min: its preparation failed or is slow. Read {LOG} on its console in vCenter; "
                    "fix the cause (network, mirrors), then `pulumi up --replace` the template VM, or raise "
                    "dsaas:vsphere.templateImage.timeoutMinutes"
                )
            sleep(settings.poll_s)
    finally:
        Disconnect(service)  # type: ignore[no-untyped-call]


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        settings = WaitSettings.from_environment(os.environ if env is None else env)
        waited = wait_powered_off(settings)
    except WaitError as error:
        print(f"dsaas: {error}", file=sys.stderr)
        return 1
    print(f"dsaas: template VM {settings.vm_name} is prepared (powered off after {waited / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
