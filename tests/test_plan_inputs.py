"""Every bad restore plan (`dsaas:restore.plan`) is a named settings problem, never a crash (issue 22).

Plain regression tests per class of bad input, then property tests that mutate the project's own valid plans
(tests/fixtures/restore.prod.*.yaml): whatever the mutation, the loader accepts a plan whose values are in
bounds, or refuses it with a bounded message naming dsaas:restore.plan and its fix.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components import restore_render as render
from config.restore_plan import MAX_PLAN_BYTES, MAX_SIZE_BYTES
from config.settings import Settings, parse_settings
from tests.conftest import ROOT_DIR, settings_values
from tests.fuzz import fuzz
from tools.lab.stack_hub import project_copy

DRIVERS = ("ontap-nas", "ontap-nas-economy")
MAX_MESSAGE = 4000  # ten problems of a few hundred characters each, whatever the plan holds


@cache
def fixture(driver: str) -> dict[str, Any]:
    text = (ROOT_DIR / f"tests/fixtures/restore.prod.{driver}.yaml").read_text(encoding="utf-8")
    plan: dict[str, Any] = yaml.safe_load(text)
    return plan


@cache
def stack_settings(driver: str) -> Settings:
    values = settings_values("prod")
    values["dsaas:storage"] = {**values["dsaas:storage"], "homesDriver": driver}
    if driver == "ontap-nas-economy":
        values["dsaas:storage"]["snapshots"] = False  # qtrees have no CSI snapshots
    return parse_settings(values)


def load(text: str, driver: str) -> render.RestorePlan:
    plan = render.parse_plan(text, "config/restore.prod.yaml")
    problems = render.check_plan(plan, stack_settings(driver), "prod", "config/restore.prod.yaml")
    if problems:
        raise render.RestorePlanError(problems)
    return plan


def refusal(text: str, driver: str) -> str:
    with pytest.raises(render.RestorePlanError) as caught:
        load(text, driver)
    assert {p.key for p in caught.value.problems} == {"dsaas:restore.plan"}
    message = str(caught.value)
    assert "Fix:" in message and len(message) < MAX_MESSAGE, message
    return message


def edited(driver: str, edit: Callable[[dict[str, Any]], Any]) -> str:
    plan = copy.deepcopy(fixture(driver))
    edit(plan)
    return yaml.safe_dump(plan, allow_unicode=True)


def set_home(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda plan: plan["homes"][index].update(fields)


def set_qtree(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda plan: plan["homes"][index]["qtree"].update(fields)


def test_the_fixtures_load() -> None:
    for driver in DRIVERS:
        plan = load(yaml.safe_dump(fixture(driver), allow_unicode=True), driver)
        assert len(plan.homes) == len(fixture(driver)["homes"])


# --- YAML that constructs badly ------------------------------------------------------------------

HEADER = "format: dsaas-restore-plan/1\nstack: prod\n"
BAD_YAML: dict[str, tuple[str, str]] = {
    "integer of thousands of digits": ("sizes: " + "9" * 5000 + "\n", "thousands of digits"),
    "impossible date as a user": ("homes: [{user: 2026-13-01}]\n", "homes.0"),
    "nesting a thousand deep": ("homes: " + "[" * 1000 + "]" * 1000 + "\n", "nests deeper"),
    "alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nwarnings: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
        "alias",
    ),
    "alias in the format": ("x: &f dsaas-restore-plan/1\nformat: *f\n", "alias"),
    "bad syntax": ("homes: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_yaml_that_constructs_badly_is_refused_quickly(case: str) -> None:
    text, expected = BAD_YAML[case]
    started = time.monotonic()
    message = refusal(text if text.startswith("format") or case.startswith("alias") else HEADER + text, "ontap-nas")
    assert expected in message, message
    assert time.monotonic() - started < 2


def test_a_huge_format_value_is_quoted_bounded() -> None:
    message = refusal("format: " + "x" * 100_000 + "\n", "ontap-nas")
    assert "..." in message and len(message) < 600


# --- values that pass the types but are nonsense -------------------------------------------------

BAD_VALUES: dict[str, tuple[str, Callable[[dict[str, Any]], Any], str]] = {
    "size as a boolean": ("ontap-nas", set_home(0, sizeBytes=True), "sizeBytes"),
    "size as a float": ("ontap-nas", set_home(0, sizeBytes=12.0), "sizeBytes"),
    "size as text": ("ontap-nas", set_home(0, sizeBytes="10737418240"), "sizeBytes"),
    "size of 10^40 bytes": ("ontap-nas", set_home(0, sizeBytes=10**40), "sizeBytes"),
    "size zero": ("ontap-nas", set_home(0, sizeBytes=0), "sizeBytes"),
    "user with a newline": ("ontap-nas", set_home(0, user="alice\n"), "user"),
    "user with a trailing space": ("ontap-nas", set_home(0, user="alice "), "whitespace"),
    "user with a control character": ("ontap-nas", set_home(0, user="al\x1bice"), "control character"),
    "user too long": ("ontap-nas", set_home(0, user="a" * 300), "user"),
    "user as a number": ("ontap-nas", set_home(0, user=12), "user"),
    "junction path /": ("ontap-nas-economy", set_qtree(0, junctionPath="/"), "junctionPath"),
    "junction path ..": ("ontap-nas-economy", set_qtree(0, junctionPath="/../../etc"), "junctionPath"),
    "junction path in .snapshot": ("ontap-nas-economy", set_qtree(0, junctionPath="/pool/.snapshot/h"), "snapshot"),
    "junction path with an empty part": ("ontap-nas-economy", set_qtree(0, junctionPath="/pool//q"), "junctionPath"),
    "data LIF 127.0.0.1": ("ontap-nas-economy", set_home(0, dataLif="127.0.0.1"), "loopback"),
    "data LIF 0.0.0.0": ("ontap-nas-economy", set_home(0, dataLif="0.0.0.0"), "unspecified"),
    "data LIF broadcast": ("ontap-nas-economy", set_home(0, dataLif="255.255.255.255"), "broadcast"),
    "data LIF multicast": ("ontap-nas-economy", set_home(0, dataLif="224.0.0.1"), "multicast"),
    "data LIF localhost": ("ontap-nas-economy", set_home(0, dataLif="localhost"), "localhost"),
    "data LIF not an address": ("ontap-nas-economy", set_home(0, dataLif="10.0.0.300"), "dataLif"),
    "two homes on one junction path": (
        "ontap-nas-economy",
        lambda p: p["homes"][1]["qtree"].update(junctionPath=p["homes"][0]["qtree"]["junctionPath"]),
        "both at junction path",
    ),
    "written missing": ("ontap-nas", lambda p: p["source"].pop("written"), "source.written"),
    "written as a number": ("ontap-nas", lambda p: p["source"].update(written=20261201), "source.written"),
    "warnings not text": ("ontap-nas", set_home(0, warnings=[{"a": 1}]), "warnings"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_nonsense_value_is_refused_naming_its_field(case: str) -> None:
    driver, edit, expected = BAD_VALUES[case]
    message = refusal(edited(driver, edit), driver)
    assert expected in message, message


def test_a_plan_larger_than_any_plan_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "restore.prod.yaml"
    with path.open("wb") as stream:
        stream.truncate(MAX_PLAN_BYTES + 1)  # sparse: nothing is written, nothing is read
    with pytest.raises(render.RestorePlanError, match="larger than"):
        render.load_plan_file(path, stack_settings("ontap-nas"), "prod", "restore.prod.yaml")


def test_a_plan_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "restore.prod.yaml"
    path.write_bytes(b"format: \xff\xfe\n")
    with pytest.raises(render.RestorePlanError, match="cannot be read"):
        render.load_plan_file(path, stack_settings("ontap-nas"), "prod", "restore.prod.yaml")


def test_the_preview_refuses_a_bad_plan_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    """The whole way: the program's loader raises before any resource, the preview prints `error:` and exits 2."""
    folder = ROOT_DIR / "config"
    stack_text = (folder / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    plan = tmp_path / "restore.prod.yaml"
    plan.write_text(edited("ontap-nas", set_home(0, sizeBytes=True)), encoding="utf-8")
    stack = yaml.safe_load(stack_text)
    stack["config"]["dsaas:restore"] = {"plan": project_copy(plan, plan.name)}
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tools.preview", "prod", "--config-dir", str(tmp_path)],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert "dsaas:restore.plan" in done.stderr and "sizeBytes" in done.stderr


# --- properties ----------------------------------------------------------------------------------

NASTY_SCALARS = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=10**30, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "/",
            "/../../etc",
            "/.snapshot/x",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "localhost",
            "alice\n",
            " alice",
            "\ud800",
            "2026-13-01",
            "1_000",
            "0x10",
            "10Gi",
        ]
    ),
)
VALUES = st.recursive(
    NASTY_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
HOME_FIELDS = ("user", "claim", "driver", "volume", "qtree", "dataLif", "sizeBytes", "warnings")
QTREE_FIELDS = ("flexvol", "name", "junctionPath")
TOP_FIELDS = ("format", "stack", "source", "homes", "warnings")


@st.composite
def mutated_plans(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    driver = draw(st.sampled_from(DRIVERS))
    plan = small_fixture(driver)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(("home", "qtree", "top", "source", "duplicate")))
        homes = plan.get("homes")
        # An earlier step may have replaced the homes, a home or its qtree: mutate only what is still there.
        homes = [h for h in homes if isinstance(h, dict)] if isinstance(homes, list) else []
        home = draw(st.sampled_from(homes)) if homes else {}
        value = draw(VALUES)
        if where == "home":
            home[draw(st.sampled_from(HOME_FIELDS))] = value
        elif where == "qtree" and isinstance(home.get("qtree"), dict):
            home["qtree"][draw(st.sampled_from(QTREE_FIELDS))] = value
        elif where == "source" and isinstance(plan.get("source"), dict):
            plan["source"][draw(st.sampled_from(("kind", "location", "written")))] = value
        elif where == "duplicate" and homes:
            other = draw(st.sampled_from(homes))
            field = draw(st.sampled_from(HOME_FIELDS))
            if field in other:
                home[field] = copy.deepcopy(other[field])
        elif where == "top":
            plan[draw(st.sampled_from(TOP_FIELDS))] = value
    return driver, plan


def small_fixture(driver: str) -> dict[str, Any]:
    """The first homes of a fixture (names KubeSpawner must slug among them): checking every example against
    50 homes would spend the time budget on KubeSpawner's name expansion, not on finding inputs."""
    plan = copy.deepcopy(fixture(driver))
    plan["homes"] = plan["homes"][:6]
    return plan


def _accepted_plan_is_sane(plan: render.RestorePlan) -> None:
    junctions = [h.qtree.junction_path for h in plan.homes if h.qtree]
    assert len(set(junctions)) == len(junctions)
    for home in plan.homes:
        assert type(home.size_bytes) is int and 0 < home.size_bytes <= MAX_SIZE_BYTES
        assert home.user == home.user.strip() and home.user.isprintable()
        assert not home.warnings
        if home.qtree:
            assert ".." not in home.qtree.junction_path.split("/") and home.qtree.junction_path != "/"


@fuzz(200)
@given(mutated_plans())
def test_a_mutated_plan_is_loaded_sane_or_refused_by_name(case: tuple[str, dict[str, Any]]) -> None:
    driver, plan = case
    try:
        text = yaml.safe_dump(plan, allow_unicode=True)
    except yaml.YAMLError:
        return  # PyYAML cannot write it (e.g. a lone surrogate): no file can hold it either
    try:
        _accepted_plan_is_sane(load(text, driver))
    except render.RestorePlanError as error:
        assert {p.key for p in error.problems} == {"dsaas:restore.plan"}
        assert "Fix:" in str(error) and len(str(error)) < 20_000


@fuzz(200)
@given(
    st.sampled_from(DRIVERS),
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.sampled_from([*"&*!<>[]{}|-:#'\"\n ?%@`,0x1e.", "true", "9" * 50, "\t"]), max_size=30).map("".join),
)
def test_text_spliced_into_a_plan_never_crashes_the_loader(driver: str, at: int, splice: str) -> None:
    text = yaml.safe_dump(small_fixture(driver), allow_unicode=True)
    cut = at % len(text)
    try:
        _accepted_plan_is_sane(load(text[:cut] + splice + text[cut:], driver))
    except render.RestorePlanError as error:
        assert "Fix:" in str(error) and len(str(error)) < 20_000
