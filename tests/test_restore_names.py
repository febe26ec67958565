"""The planner (tools/dr) and the graph (components/restore_render) name a user's claim the same way.

Both call KubeSpawner 7's own code, through two doors: the planner with the template and slug scheme of
the stack's rendered hub values, the graph with the pinned ones. A plan the planner writes must pass the
graph's check, so the two must agree for every user, tricky names above all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.restore_render import claim_for_user
from tests.conftest import ROOT_DIR, load_settings
from tools.dr.restore import claim_name

FIXTURES = sorted((ROOT_DIR / "tests" / "fixtures").glob("restore.prod.*.yaml"))


def _users() -> list[str]:
    users: set[str] = set()
    for path in FIXTURES:
        users |= {str(home["user"]) for home in yaml.safe_load(Path(path).read_text())["homes"]}
    return sorted(users)


def test_the_fixtures_hold_tricky_names() -> None:
    users = _users()
    assert len(users) >= 50
    assert any(u != u.lower() for u in users) and any("@" in u for u in users) and any("." in u for u in users)
    assert any(not u.isascii() for u in users) and max(len(u) for u in users) >= 60


@pytest.mark.parametrize("user", _users())
def test_planner_and_graph_compute_the_same_claim(user: str) -> None:
    assert claim_name(user, load_settings("prod")) == claim_for_user(user).name
