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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.new_stack", description=__doc__.splitlines()[0])
    parser.add_argument("example", help="the example stack to start from, e.g. prod (config/Pulumi.prod.yaml)")
    parser.add_argument("name", help="your stack's name (config/Pulumi.<name>.yaml is written)")
    parser.add_argument("--config-dir", type=Path, default=None, help="folder of stack files (default: config/)")
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
    try:
        with target.open("x", encoding="utf-8") as stream:  # "x": never through a link made meanwhile
            stream.write(text)
    except OSError as error:
        print(f"error: cannot write {target}: {error.strerror}. Fix: check the folder (--config-dir).", file=sys.stderr)
        return 2
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
    print(f"  1. edit {shown}: addresses, vCenter objects, ONTAP, LDAP, hub (reference: docs/settings.md)")
    print(f"  2. pulumi stack init {args.name} --secrets-provider passphrase   # or awskms://, azurekeyvault://, ...")
    print("  3. set each secret this stack's settings need (each prompts, or reads the file after '<'):")
    for spec in needed:
        print(f"     {spec.command}")
    print(f"  4. python -m tools.preview {args.name} --policy-pack policies   # offline pre-flight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
