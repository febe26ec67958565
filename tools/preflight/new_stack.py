"""A stack of your own from an example: `python -m tools.new_stack <example> <name>`.

The example stack files carry `secure:` values encrypted for *their* stack (in this repository,
placeholders that nobody can decrypt). Under your own stack and secrets provider they are useless and
make `pulumi config` fail to decrypt, so they must go, and each secret must be set again with your
provider. This command writes `config/Pulumi.<name>.yaml` from the example with its comments and
settings but without any `secure:` value or the example's encryption salt, and prints the commands
that finish the stack: `pulumi stack init` with a secrets provider, then one `pulumi config set
--secret` per secret that this stack's settings need (each prompts, or reads a pipe, so no secret
lands on a command line or in shell history).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from config.loader import required_secrets
from config.settings import NAMESPACE, SECRET_KEYS, SettingsError, parse_settings
from tools.offline.mockgraph import (
    ROOT,
    StackFileError,
    check_stack_name,
    project_defaults,
    read_stack_values,
    stack_file,
)

# Top-level keys that belong to the example's own stack and secrets provider, never to a copy.
_PROVIDER_KEYS = ("encryptionsalt:", "secretsprovider:", "encryptedkey:")
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def without_secrets(text: str) -> tuple[str, list[str]]:
    """The stack file text without `secure:` values and provider keys; also the keys removed."""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    removed: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith(_PROVIDER_KEYS):
            index += 1
            continue
        inline = re.match(r"^\s+([^\s:#][^:]*:[^:\s]+|[^\s:#]+):\s*\{\s*secure:", line)
        if inline:
            removed.append(inline.group(1))
            index += 1
            continue
        key = re.match(r"^(\s+)([^\s#][^\s]*):\s*$", line)
        if key and re.match(rf"^{key.group(1)}\s+secure:\s", following):
            removed.append(key.group(2))
            index += 2
            continue
        kept.append(line)
        index += 1
    return "".join(kept), removed


_CLUSTER_NAME = re.compile(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?")  # config/cluster.py ClusterSettings.cluster_name
_CLUSTER_NAME_LINE = re.compile(r"^(\s+dsaas:clusterName:\s*)(\S+)(.*)$", re.MULTILINE)


def cluster_name_for(stack: str) -> str | None:
    """`dsaas-<stack>` when that is a valid cluster name (it prefixes VM and host names), else None."""
    candidate = f"dsaas-{stack.lower()}"
    return candidate if _CLUSTER_NAME.fullmatch(candidate) else None


def made_your_own(text: str, example: str, name: str, keep_cluster_name: bool = False) -> tuple[str, str | None]:
    """The copy as the new stack's: its own first comment, the example's other comments marked as the
    example's (they describe that site), and `dsaas:clusterName` from the new name. Also the cluster name
    set (None: the example's is kept, as no valid one follows from the name)."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)  # the example's description of itself
    header = (
        f"# Stack {name}, made by tools.new_stack from the example {example}. Every value is the example's until you\n"
        "# change it; comments marked 'example:' describe the example's site (reference: docs/settings.md).\n"
    )
    body = "".join(re.sub(r"^(\s*)# (?!example:)", r"\1# example: ", line) for line in lines)
    cluster = None if keep_cluster_name else cluster_name_for(name)
    if cluster is not None:
        body = _CLUSTER_NAME_LINE.sub(lambda m: f"{m.group(1)}{cluster}{m.group(3)}", body, count=1)
    return header + body, cluster


# The examples are a few KiB; a larger file is not a stack file.
MAX_EXAMPLE_BYTES = 1024 * 1024


def _example_text(source: Path) -> str:
    """The example stack file's text, or `StackFileError` saying why it cannot be one."""
    fix = "Fix: name one of config/Pulumi.<example>.yaml (e.g. prod)."
    try:
        if not source.is_file():
            if source.is_dir():
                raise StackFileError(f"the example stack file {source} is a folder, not a file. {fix}")
            raise StackFileError(f"no stack file {source}. {fix}")
        if source.stat().st_size > MAX_EXAMPLE_BYTES:
            raise StackFileError(f"the example {source} is larger than any stack file (1 MiB). {fix}")
        return source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StackFileError(f"the example {source} is not UTF-8 text. {fix}") from None
    except OSError as error:
        raise StackFileError(f"the example {source} cannot be read: {error.strerror}. {fix}") from None


def _example_branding(values: dict[str, object]) -> str:
    """The example's branding files the copy still points at (the shipped logo and login page), or ""."""
    hub = values.get(f"{NAMESPACE}:hub")
    branding = hub.get("branding") if isinstance(hub, dict) else None
    if not isinstance(branding, dict):
        return ""
    shipped = [str(v) for v in branding.values() if isinstance(v, str) and v.startswith("config/branding/")]
    return " and ".join(shipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.new_stack", description=__doc__.splitlines()[0])
    parser.add_argument("example", help="the example stack to start from, e.g. prod (config/Pulumi.prod.yaml)")
    parser.add_argument("name", help="your stack's name (config/Pulumi.<name>.yaml is written)")
    parser.add_argument("--config-dir", type=Path, default=None, help="folder of stack files (default: config/)")
    parser.add_argument(
        "--keep-cluster-name",
        action="store_true",
        help="keep the example's dsaas:clusterName (rebuilding that cluster: its backups are under its name); "
        "default: dsaas-<name>",
    )
    args = parser.parse_args(argv)
    if not _STACK_NAME.fullmatch(args.name):
        print(
            f"error: {ascii(args.name)[:80]} is not a stack name. Fix: letters, digits, '-', '_' or '.' (at most 100).",
            file=sys.stderr,
        )
        return 2
    try:
        check_stack_name(args.example)
    except StackFileError as error:
        print(f"error: the example: {error}", file=sys.stderr)
        return 2
    source, target = stack_file(args.example, args.config_dir), stack_file(args.name, args.config_dir)
    try:
        text = _example_text(source)
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if target.is_symlink() or target.exists():
        # A link (even a dangling one) would be written through, to wherever it points.
        print(f"error: {target} exists already. Fix: choose another name, or remove it first.", file=sys.stderr)
        return 2
    text, removed = without_secrets(text)
    text, cluster = made_your_own(text, args.example, args.name, args.keep_cluster_name)
    try:
        with target.open("x", encoding="utf-8") as stream:  # "x": never through a link made meanwhile
            stream.write(text)
    except OSError as error:
        print(f"error: cannot write {target}: {error.strerror}. Fix: check the folder (--config-dir).", file=sys.stderr)
        return 2
    values: dict[str, object] = {}
    try:
        values = {**project_defaults(), **read_stack_values(args.name, args.config_dir)}
        settings = parse_settings(
            {k: v for k, v in values.items() if k.partition(":")[0] == NAMESPACE and k not in SECRET_KEYS}
        )
        needed = required_secrets(settings)
    except (SettingsError, StackFileError) as error:
        print(f"note: {target} does not pass the settings yet ({error}); listing the secrets every stack needs.")
        needed = required_secrets(None)
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    print(f"Wrote {shown} from {source.name} without its {len(removed)} secure values ({', '.join(removed)}).")
    print("Next:")
    if cluster:
        named = f"dsaas:clusterName is {cluster}"
    elif args.keep_cluster_name:
        named = "dsaas:clusterName is the example's (--keep-cluster-name)"
    else:
        named = "dsaas:clusterName is still the example's: set yours"
    print(f"  1. edit {shown}: addresses, vCenter objects, ONTAP, LDAP, hub (reference: docs/settings.md); {named}")
    branding = _example_branding(values)
    if branding:
        print(f"     your logo and login page: dsaas:hub.branding still names the example's {branding}")
    print(f"  2. pulumi stack init {args.name} --secrets-provider passphrase   # or awskms://, azurekeyvault://, ...")
    print("  3. set each secret this stack's settings need (each prompts, or reads the file after '<'):")
    for spec in needed:
        print(f"     {spec.command}")
    print(f"  4. python -m tools.preview {args.name} --policy-pack policies   # offline pre-flight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
