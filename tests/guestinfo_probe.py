"""Runs under Debian's system python3, where cloud-init lives: feeds guestinfo values to the real
VMware datasource through its environment-variable transport and prints what cloud-init reads.

Usage: python3 guestinfo_probe.py < extra_config.json  → JSON {metadata, userdata, network}
"""

import json
import os
import sys

from cloudinit import distros, helpers, settings
from cloudinit.sources import DataSourceVMware

extra_config = json.load(sys.stdin)
os.environ["VMX_GUESTINFO"] = "1"
for key, value in extra_config.items():
    os.environ[DataSourceVMware.get_guestinfo_envvar_key_name(key.removeprefix("guestinfo."))] = value

paths = helpers.Paths({"cloud_dir": os.environ.get("PROBE_CLOUD_DIR", "/tmp/dsaas-probe-cloud")})
distro = distros.fetch("ubuntu")("ubuntu", {}, paths)
source = DataSourceVMware.DataSourceVMware(settings.CFG_BUILTIN, distro, paths)
if not source._get_data():
    sys.exit("the VMware datasource found no data")
json.dump(
    {
        "metadata": {k: v for k, v in source.metadata.items() if k != "network"},
        "userdata": source.userdata_raw,
        "network": source.network_config,
        "instance_id": source.get_instance_id(),
        "hostname": source.get_hostname().hostname,
    },
    sys.stdout,
)
