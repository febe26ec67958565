"""Every command the README and docs/ show works as written, and every shown output is the real one.

Commands in fenced `bash` blocks are sorted by what can run here:
- the program's own commands (`python -m tools.<command>`, `make preview`) run as written, from the
  repository root, and must exit as the page implies (0; a refused stack's documented exit 2);
- the README's set-up lines (`apt-get`, `make test`, the two commands at the top) are what
  `tools/ci/fresh_machine.sh` runs on a fresh Debian root in CI;
- `pulumi` and `kubectl` lines need a vCenter: each is checked against the program instead (a config
  key it reads, secret where it must be; a stack output it exports; a flag the CLI has; a URN's type
  chain and name that the program registers; a namespace it creates); so are `helm` lines (a release
  the program installs, in its namespace) and `ssh` lines to a node (the admin user, a node's name or
  address, a program the node has, a log file a node script or cloud-init writes);
- commands that need a directory (`ldap_check`, `try_hub`, `login_benchmark`) are run by the e2e tests
  named in `NEEDS_A_DIRECTORY`; here their flags are checked against the command's own parser.
- a secret is typed at a prompt (`read -rs NAME && export NAME`), never put on a command line: each
  prompt line is run by bash with the values on its standard input, and exports what the tools read.
A block under `<!-- generated: <command> -->` is that command's output, compared byte for byte.
"""

from __future__ import annotations

import functools
import itertools
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components import backup_render
from config.loader import known_secrets
from tests.conftest import ROOT_DIR, load_settings
from tools.offline.mockgraph import Graph, unwrap

PAGES = [ROOT_DIR / "README.md", *sorted((ROOT_DIR / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```([a-z]*)\n(.*?)^\1```", re.S | re.M)
GENERATED = re.compile(r"<!-- generated: (.+?) -->\n( *)```[a-z]*\n(.*?)^\2```", re.S | re.M)
INLINE_TOOL = re.compile(r"`(?:\.venv/bin/)?python -m (tools\.[a-z0-9_.]+)([^`]*)`")
# Run here by the e2e tests that drive them against a real peer (slapd; moto's S3 and an ONTAP replay).
NEEDS_A_DIRECTORY = {
    "tools.ldap_check": "tests/e2e/test_ldap_check.py",
    "tools.try_hub": "tests/e2e/test_ldap_check.py",
    "tools.login_benchmark": "tests/e2e/test_commands.py",
    "tools.s3_check": "tests/e2e/test_s3_check.py",  # against moto's S3 server
    "tools.restore": "tests/e2e/test_restore_plan.py",
    # Building another minor takes many minutes: the default one is built by `make test` (make controlplane);
    # the command's pins and refusals are tested there.
    "tools.controlplane": "tests/test_controlplane_tools.py",
}
PULUMI_FLAGS = {"--stack", "--diff", "--policy-pack", "--policy-pack-config", "--replace", "--secret", "--show-secrets"}


@dataclass(frozen=True)
class Command:
    page: str
    line: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.line)

    def __str__(self) -> str:
        return f"{self.page}: {self.line}"


def _strip_comment(line: str) -> str:
    """A shell comment after the command (two spaces or more, then #), outside quotes."""
    match = re.search(r"\s{2,}#.*$|^\s*#.*$", line)
    return line[: match.start()].rstrip() if match else line.rstrip()


def commands() -> Iterator[Command]:
    for page in PAGES:
        for block in FENCE.finditer(page.read_text()):
            if block.group(2) not in ("bash", "sh"):
                continue
            pending = ""
            for raw in block.group(3).splitlines():
                line = _strip_comment(raw.strip())
                if line.endswith("\\"):
                    pending += line[:-1] + " "
                    continue
                line = (pending + line).strip()
                pending = ""
                if line:
                    yield Command(page.relative_to(ROOT_DIR).as_posix(), line)


ALL = list(commands())


def unwrapped(command: Command) -> Command:
    """`export NAME="$(command ...)"` stands for the command it runs (its output is never typed)."""
    match = re.fullmatch(r'export [A-Z][A-Z0-9_]*="\$\((.+)\)"', command.line)
    return Command(command.page, match.group(1)) if match else command


def _kind(command: Command) -> str:
    words = unwrapped(command).words
    while words and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", words[0]):
        words = words[1:]
    head = words[0] if words else ""
    if head in (".venv/bin/python", "python") and words[1:2] == ["-m"]:
        if words[2] == "pytest":
            return "pytest"
        return "directory" if words[2] in NEEDS_A_DIRECTORY else "tool"
    if head == "make" and words[1:2] == ["preview"]:
        return "tool"
    if head in ("make", "apt-get", "curl"):
        return "set-up"
    if head == "read":
        return "prompt"
    return head


def test_every_command_is_of_a_kind_the_test_knows() -> None:
    kinds = {str(c): _kind(c) for c in ALL}
    known = ("tool", "directory", "set-up", "pulumi", "kubectl", "helm", "ssh", "velero", "aws", "pytest", "prompt")
    unknown = {c: k for c, k in kinds.items() if k not in known}
    assert unknown == {}
    assert sum(k == "tool" for k in kinds.values()) >= 15


def test_the_set_up_lines_are_what_the_fresh_machine_check_runs() -> None:
    plan = subprocess.run(
        ["bash", "tools/ci/fresh_machine.sh", "--plan"], cwd=ROOT_DIR, capture_output=True, text=True, check=True
    ).stdout
    for command in ALL:
        if _kind(command) == "set-up" and not command.line.startswith("curl "):
            assert command.line in plan, command
    readme = (ROOT_DIR / "README.md").read_text()
    cli = re.search(r"`curl -fsSL https://get\.pulumi\.com \| sh -s -- --version ([0-9.]+)`", readme)
    pinned = re.search(r"^pulumi==([0-9.]+)$", (ROOT_DIR / "requirements.txt").read_text(), re.M)
    assert cli and pinned and cli.group(1) == pinned.group(1), "the CLI is pinned to the SDK's release"


def test_pytest_lines_name_tests_and_variables_the_suite_has() -> None:
    """Running a part of the suite is `make test`'s job here; a page's line must still point at real tests
    and at environment variables the tests read."""
    lines = [c for c in ALL if _kind(c) == "pytest"]
    sources = "".join(path.read_text() for path in (ROOT_DIR / "tests").rglob("*.py"))
    for command in lines:
        words = command.words
        for assignment in (w for w in words if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", w)):
            assert f'"{assignment.split("=")[0]}"' in sources, (command, assignment)
        for path in words[words.index("pytest") + 1 :]:
            if not path.startswith("-"):
                assert (ROOT_DIR / path.split("::")[0]).exists(), (command, path)


# --- commands that need a vCenter: checked against the program -----------------------------------


@pytest.fixture(scope="module")
def prod(graphs: dict[str, Graph]) -> Graph:
    return graphs["prod"]


def test_pulumi_lines_use_keys_outputs_flags_and_urns_the_program_has(prod: Graph) -> None:
    secrets = {spec.key for spec in known_secrets()}
    urns = {r.urn for r in prod.resources}
    checked = 0
    for command in (c for c in ALL if _kind(c) == "pulumi"):
        words = unwrapped(command).words
        for flag in (w for w in words if w.startswith("--")):
            assert flag in PULUMI_FLAGS | {"--secrets-provider"}, (command, flag)
        for flag, value in itertools.pairwise(words):
            if flag in ("--policy-pack", "--policy-pack-config"):
                assert (ROOT_DIR / value).exists(), (command, value)
            if flag == "--replace":  # the example's stack is `mysite`, made from prod
                assert value.replace("mysite", "prod") in urns, command
        if words[1:3] == ["config", "set"]:
            assert "--secret" in words and words[-1] in secrets, command
        if words[1:3] == ["stack", "output"]:
            assert words[3] in prod.outputs, command
        checked += 1
    assert checked >= 5


def test_kubectl_lines_name_namespaces_the_program_creates(prod: Graph) -> None:
    namespaces = {str(r.inputs.get("metadata", {}).get("name")) for r in prod.of_type("kubernetes:core/v1:Namespace")}
    lines = [c for c in ALL if _kind(c) == "kubectl"]
    assert lines
    for command in lines:
        words = command.words
        if "-n" in words:
            assert words[words.index("-n") + 1] in namespaces, command


def test_helm_lines_name_releases_the_program_installs(prod: Graph) -> None:
    releases = {
        (str(unwrap(r.inputs["namespace"])), str(unwrap(r.inputs["name"])))
        for r in prod.of_type("kubernetes:helm.sh/v3:Release")
    }
    lines = [c for c in ALL if _kind(c) == "helm"]
    assert lines
    for command in lines:
        words = command.words[command.words.index("helm") :]
        namespace, subcommand, release = words[2:5]
        assert words[1] == "-n" and subcommand in ("status", "history"), command
        assert (namespace, release) in releases, command


# What a node has to run by hand: coreutils and systemd's journalctl (Ubuntu), cloud-init (the template),
# crictl (cri-tools, a dependency of the kubeadm package prepare-node.sh installs). The logs: cloud-init's
# own (cloudinit/config/cc_* log to /var/log/cloud-init.log) and those the node scripts write.
NODE_PROGRAMS = {"tail", "journalctl", "crictl", "cloud-init", "kubeadm", "systemctl"}
# What the docs may run on a node with those two: reading, never changing.
READ_ONLY_SUBCOMMANDS = {"kubeadm": ("certs", "check-expiration"), "systemctl": ("list-timers",)}
CLOUD_INIT_LOGS = {"/var/log/cloud-init.log", "/var/log/cloud-init-output.log"}


def test_ssh_lines_reach_a_node_as_its_admin_user_and_read_what_is_there(prod: Graph) -> None:
    """The example stack `mysite` is prod's copy (`tools.new_stack prod mysite`): its nodes are prod's,
    named `dsaas-mysite-*`."""
    from tools.preflight.site_plan import read_vms

    vms = read_vms(prod)
    hosts = {vm.fqdn for vm in vms} | {vm.address for vm in vms}
    scripts = "".join(path.read_text() for path in (ROOT_DIR / "components" / "templates").rglob("*.sh"))
    lines = [c for c in ALL if _kind(c) == "ssh"]
    assert lines
    for command in lines:
        words = command.words
        user, _, host = words[1].partition("@")
        assert user == load_settings("prod").ssh.user, command
        assert host.replace("mysite", "prod") in hosts, command
        assert words[2] == "sudo" and words[3] in NODE_PROGRAMS, command
        read_only = READ_ONLY_SUBCOMMANDS.get(words[3])
        assert read_only is None or tuple(words[4 : 4 + len(read_only)]) == read_only, command
        for path in (w for w in words if w.startswith("/var/log/")):
            assert path in CLOUD_INIT_LOGS or re.search(rf"(?<![\w/.-]){re.escape(path)}(?![\w/.-])", scripts), (
                command,
                path,
            )
        if "-u" in words:  # a unit the node scripts enable
            unit = words[words.index("-u") + 1]
            assert re.search(rf"systemctl enable (--now )?{unit}\b", scripts), command


def test_velero_lines_name_the_namespace_and_schedules_the_program_creates(prod: Graph) -> None:
    (release,) = [r for r in prod.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "velero"]
    values = unwrap(release.inputs["values"])
    # The chart names each schedule <release>-<key> (templates/schedule.yaml).
    schedules = {f"{release.inputs['name']}-{name}" for name in values["schedules"]}
    lines = [c for c in ALL if _kind(c) == "velero"]
    assert lines
    for command in lines:
        words = command.words
        assert words[words.index("-n") + 1] == release.inputs["namespace"], command
        if words[1:3] == ["schedule", "describe"]:
            assert words[3] in schedules, command


def test_aws_lines_name_the_bucket_folders_and_endpoint_of_the_stack(prod: Graph) -> None:
    settings = load_settings("prod")
    store = settings.backup.object_store
    assert store is not None
    prefix = backup_render.object_prefix(settings)
    folders = {"velero", "inventory", "hub-database"}
    lines = [c for c in ALL if _kind(c) == "aws"]
    assert lines
    for command in lines:
        words = command.words
        urls = [w for w in words if w.startswith("s3://")]
        for url in urls:
            bucket, _, key = url.removeprefix("s3://").partition("/")
            assert bucket == store.bucket, command
            assert key.split("/")[:1] == [prefix] and key.split("/")[1] in folders, command
        if "--endpoint-url" in words:
            assert words[words.index("--endpoint-url") + 1] == str(store.endpoint).rstrip("/"), command


# --- commands that need a directory: flags against the command's parser, run by e2e tests ---------


@functools.cache
def _help(module: str, *subcommand: str) -> str:
    """A command's usage, run once per command: pages name the same tools hundreds of times, and each run
    starts a Python that imports Pulumi (together they took three minutes of the suite)."""
    result = subprocess.run(
        [sys.executable, "-m", module, *subcommand, "--help"], cwd=ROOT_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (module, result.stderr)
    return result.stdout


def test_commands_that_need_a_directory_take_the_flags_shown_and_are_run_by_the_e2e_tests() -> None:
    for command in (c for c in ALL if _kind(c) == "directory"):
        words = command.words
        module = words[words.index("-m") + 1]
        usage = _help(module)
        first = (words[words.index("-m") + 2 :] or [""])[0]
        if re.fullmatch(r"[a-z]+", first) and (f"{{{first}," in usage or f",{first}}}" in usage):
            usage = _help(module, first)  # a subcommand's own flags
        for flag in (w for w in words if w.startswith("--")):
            assert flag in usage, (command, flag)
        e2e = (ROOT_DIR / NEEDS_A_DIRECTORY[module]).read_text()
        assert module.removeprefix("tools.") in e2e, (command, NEEDS_A_DIRECTORY[module])


def test_inline_commands_name_real_commands_and_flags() -> None:
    for page in PAGES:
        for match in INLINE_TOOL.finditer(page.read_text()):
            first = (match.group(2).split() or [""])[0]
            usage = _help(match.group(1))
            if (re.fullmatch(r"[a-z]+", first) and f"{{{first}," in usage) or f",{first}}}" in usage:
                usage = _help(match.group(1), first)  # a subcommand's own flags
            for flag in re.findall(r"--[a-z][a-z-]*", match.group(2)):
                assert flag in usage, (page.name, match.group(0), flag)


# --- secrets: typed at a prompt ---------------------------------------------------------------------
# A value typed after `=` lands in the shell's history; one the shell reads from a command's output (`="$(pulumi
# stack output ... --show-secrets)"`, the inventory key) never appears in the history or on a command line.
SECRET_ASSIGNMENT = re.compile(r"(?:^|\s)(DSAAS_[A-Z0-9_]*(?:PASSWORD|SECRET|KEY)[A-Z0-9_]*)=(?!\"?\$\()")


def _tool_secret_variables() -> set[str]:
    from tools.dr import sources
    from tools.preflight import ldap_check, s3_check

    return {
        ldap_check.SEARCH_PASSWORD_ENV,
        ldap_check.USER_PASSWORD_ENV,
        s3_check.ACCESS_KEY_ENV,
        s3_check.SECRET_KEY_ENV,
        sources.ONTAP_USER_ENV,
        sources.ONTAP_PASSWORD_ENV,
    }


def test_no_page_puts_a_secret_on_a_command_line() -> None:
    """Issue 27: `DSAAS_LDAP_SEARCH_PASSWORD='…' python -m ...` lands the password in the shell's history."""
    assert [str(c) for c in ALL if SECRET_ASSIGNMENT.search(c.line)] == []


@pytest.mark.parametrize("command", [c for c in ALL if _kind(c) == "prompt"], ids=str)
def test_each_secret_prompt_reads_unseen_and_exports_what_a_tool_reads(command: Command) -> None:
    read = re.findall(r"\bread -rs ([A-Z][A-Z0-9_]*)\b", command.line)
    exported = re.search(r"&& export ((?:[A-Z][A-Z0-9_]* ?)+)$", command.line)
    assert read and exported, command  # every read is -rs (no echo, no backslash escapes), then exported
    assert sorted(exported.group(1).split()) == sorted(read) and set(read) <= _tool_secret_variables(), command
    values = [f"typed value {i} with spaces \\ and $dollar" for i in range(len(read))]
    shown = subprocess.run(
        ["bash", "-c", command.line + ' && env -0 | grep -z "^DSAAS_" | tr "\\0" "\\n"'],
        input="".join(f"{v}\n" for v in values),
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    assert sorted(shown.splitlines()) == sorted(f"{name}={value}" for name, value in zip(read, values, strict=True))


# --- the program's own commands, run as written ----------------------------------------------------


def _run(line: str) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line)
    if words[0] in (".venv/bin/python", "python"):
        words[0] = sys.executable
    return subprocess.run(words, cwd=ROOT_DIR, capture_output=True, text=True, check=False, timeout=600)


def _outputs_of(line: str) -> list[Path]:
    """Files a documented command writes that are not part of the repository."""
    words = shlex.split(line)
    written = []
    for flag in ("--out", "--manifest"):
        if flag in words:
            written.append(ROOT_DIR / words[words.index(flag) + 1])
    if "tools.new_stack" in words:  # the stack file it makes from the example: its second positional argument
        positional = [w for w in words[words.index("tools.new_stack") + 1 :] if not w.startswith("-")]
        written.append(ROOT_DIR / "config" / f"Pulumi.{positional[1]}.yaml")
    return written


def _tracked_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT_DIR, capture_output=True, text=True
    ).stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [c for c in ALL if _kind(c) == "tool" and "mysite" not in c.line],
    ids=lambda c: c.line[:70],
)
def test_each_offline_command_works_as_written(command: Command) -> None:
    """Commands that refresh committed files (snapshot, picture, settings reference) leave them as
    committed: the documentation and the repository agree."""
    before = _tracked_state()
    reference = ROOT_DIR / "old.yaml"
    made_reference = "old.yaml" in command.words and not reference.exists()
    if made_reference:  # the page's example of "a snapshot file" from an earlier run
        shutil.copy(ROOT_DIR / "snapshots" / "prod.yaml", reference)
    try:
        result = _run(command.line)
    finally:
        if made_reference:
            reference.unlink()
        for path in _outputs_of(command.line):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert _tracked_state() == before, f"{command} changed committed files"


@pytest.mark.slow
def test_run_it_for_real_steps_3_to_6_work_as_written() -> None:
    """A new stack from the example, its secrets set as the README says (here as `secure:` placeholders,
    which is what `pulumi config set --secret` leaves in the file), then the offline pre-flight."""
    steps = [c for c in ALL if c.page == "README.md" and "mysite" in c.line and _kind(c) == "tool"]
    new_stack, preflight = steps
    stack_file = ROOT_DIR / "config" / "Pulumi.mysite.yaml"
    assert not stack_file.exists()
    try:
        created = _run(new_stack.line)
        assert created.returncode == 0, created.stderr
        refused = _run(preflight.line)
        assert refused.returncode == 2, "without its secrets the new stack is refused"
        printed = re.findall(r"pulumi config set --secret (\S+)", created.stdout)
        assert printed and set(printed) == set(re.findall(r"- (\S+): .* is not set", refused.stderr))
        document = yaml.safe_load(stack_file.read_text())
        for key in printed:
            document["config"][key] = {"secure": "AAABAHNldC1ieS10aGUtb3BlcmF0b3I="}
        stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
        passed = _run(preflight.line)
        # Exit 0: the settings pass and the policy pack found no mandatory violation.
        assert passed.returncode == 0, passed.stdout[-2000:] + passed.stderr[-2000:]
    finally:
        stack_file.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("page", "command", "shown"),
    [(page.name, match.group(1), match.group(3)) for page in PAGES for match in GENERATED.finditer(page.read_text())],
)
def test_shown_output_is_what_the_command_prints(page: str, command: str, shown: str) -> None:
    result = _run(command)
    printed = result.stdout + result.stderr
    expected = textwrap.dedent(shown).rstrip("\n")
    assert printed.rstrip("\n") == expected, f"{page}: regenerate the block under `{command}`"
