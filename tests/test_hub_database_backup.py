"""A PostgreSQL hub database is backed up, or the stack says who backs it up (issue 21): the settings' rules,
the URL turned into libpq's variables, and the pg_dump CronJob in prod's graph. The dump itself runs against a
real PostgreSQL server in tests/e2e/test_hub_database_pg_dump.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from components import backup_render as render
from config import versions
from config.hub import pg_url_problems
from config.settings import SettingsError
from tools.offline.mockgraph import Graph, is_secret, run_program, unwrap

EXTERNAL_POSTGRES: dict[str, Any] = {
    "kind": "postgres",
    "backup": "external",
    "externalBackup": "pgBackRest on db01 by the DBA team, nightly full, 35 days",
}
PG_DUMP: dict[str, Any] = {"kind": "postgres", "backup": "pg_dump"}
SECRET = {"secure": "AAABAHBvc3RncmVz"}
S3_KEYS = ("dsaas:s3HubDatabaseAccessKeyId", "dsaas:s3HubDatabaseSecretAccessKey")


def _postgres(values: dict[str, Any], database: dict[str, Any]) -> dict[str, Any]:
    values["dsaas:hub"]["database"] = database
    values["dsaas:hubDatabaseUrl"] = SECRET
    return values


def _refused(values: dict[str, Any], stack: str = "prod") -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        run_program(stack, values)
    return caught.value


@pytest.mark.parametrize(
    ("database", "key", "said"),
    [
        ({"kind": "postgres"}, "dsaas:hub.database.backup", "nothing in this stack says how it is backed up"),
        ({"kind": "postgres", "backup": "external"}, "dsaas:hub.database.externalBackup", "who backs the database"),
        (
            {**PG_DUMP, "externalBackup": EXTERNAL_POSTGRES["externalBackup"]},
            "dsaas:hub.database.externalBackup",
            "but dsaas:hub.database.backup is pg_dump",
        ),
        ({"kind": "block", "backup": "pg_dump"}, "dsaas:hub.database.backup", "only with dsaas:hub.database.kind"),
    ],
)
def test_a_postgres_database_says_how_it_is_backed_up(
    database: dict[str, Any], key: str, said: str, stack_values: Callable[[str], dict[str, Any]]
) -> None:
    error = _refused(_postgres(stack_values("prod"), database))
    assert error.keys == [key] and said in str(error)


def test_pg_dump_without_backups_has_nowhere_to_go(stack_values: Callable[[str], dict[str, Any]]) -> None:
    values = _postgres(stack_values("prod"), PG_DUMP)
    values["dsaas:backup"] = {**values["dsaas:backup"], "enabled": False}
    error = _refused(values)
    assert error.keys == ["dsaas:hub.database.backup"] and "nowhere to go" in str(error)


def test_the_url_becomes_libpqs_variables_with_the_password_decoded() -> None:
    url = "postgresql+psycopg2://hub:p%40ss%3Aw%2Frd@db.example.org/jupyter%20hub?sslmode=verify-full"
    assert pg_url_problems(url) == []
    assert render.render_pg_connection(url) == {
        "PGHOST": "db.example.org",
        "PGPORT": "5432",
        "PGUSER": "hub",
        "PGDATABASE": "jupyter hub",
        "PGPASSWORD": "p@ss:w/rd",
        "PGSSLMODE": "verify-full",
    }


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://hub:pw@db.example.org/jupyterhub", "is not a postgresql://"),
        ("postgresql:///jupyterhub?host=/run/postgresql", "names no host"),
        ("postgresql://db.example.org/jupyterhub", "names no user"),
        ("postgresql://hub:pw@db.example.org", "names no database"),
        ("postgresql://hub:pw@db.example.org:fivefourthreetwo/jupyterhub", "port that is not a number"),
        ("postgresql://hub:pw@db.example.org/jupyterhub?sslrootcert=/etc/ca.pem", "sslrootcert"),
    ],
)
def test_a_url_the_job_cannot_use_is_named(url: str, said: str) -> None:
    problems = pg_url_problems(url)
    assert any(said in problem for problem in problems), problems
    assert not any("pw" in problem.split() for problem in problems)


def test_a_bad_url_is_refused_before_anything_is_made_without_showing_it(
    stack_values: Callable[[str], dict[str, Any]],
) -> None:
    values = _postgres(stack_values("prod"), PG_DUMP)
    values["dsaas:hubDatabaseUrl"] = "mysql://hub:hunter2@db.example.org/jupyterhub"  # in clear, and unusable
    error = _refused(values)
    assert error.keys == ["dsaas:hubDatabaseUrl", "dsaas:hubDatabaseUrl"]
    assert "clear text" in str(error) and "is not a postgresql://" in str(error) and "hunter2" not in str(error)


@pytest.fixture(scope="module")
def pg_dump_graph() -> Graph:
    from tools.offline.mockgraph import read_stack_values

    return run_program("prod", _postgres(read_stack_values("prod"), PG_DUMP))


def _job(graph: Graph) -> dict[str, Any]:
    job: dict[str, Any] = unwrap(graph.by_urn(_job_urn(graph)).inputs)
    return job


def test_the_pg_dump_job_reads_its_connection_from_a_secret_only(pg_dump_graph: Graph) -> None:
    job = _job(pg_dump_graph)
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (dump,) = pod["initContainers"]
    assert dump["image"] == versions.POSTGRES_CLIENT_IMAGE and dump["command"][-1].endswith("pg-dump.sh")
    assert dump["envFrom"] == [{"secretRef": {"name": render.HUB_PG_CONNECTION_SECRET}}]
    assert {e["name"] for e in dump["env"]} == {"PG_CLIENT_MAJOR", "OUT", "HOME"}
    assert "affinity" not in pod and not any("persistentVolumeClaim" in v for v in pod["volumes"])
    assert pod["automountServiceAccountToken"] is False
    (upload,) = pod["containers"]
    assert {e["name"]: e["value"] for e in upload["env"]}["SUFFIX"] == ".dump"
    (secret,) = [
        r
        for r in pg_dump_graph.of_type("kubernetes:core/v1:Secret")
        if unwrap(r.inputs)["metadata"]["name"] == render.HUB_PG_CONNECTION_SECRET
    ]
    assert is_secret(secret.inputs["stringData"])
    assert unwrap(secret.inputs)["metadata"]["labels"] == {render.VELERO_EXCLUDE_LABEL: "true"}
    assert secret.urn in pg_dump_graph.ancestors(pg_dump_graph.by_urn(_job_urn(pg_dump_graph)))
    for minor in versions.SUPPORTED_KUBERNETES_MINORS:
        kubernetes_validate.validate(json.loads(json.dumps(job)), f"{minor}.0", strict=True)


def _job_urn(graph: Graph) -> str:
    (urn,) = [
        r.urn
        for r in graph.of_type("kubernetes:batch/v1:CronJob")
        if unwrap(r.inputs)["metadata"]["name"] == render.HUB_DATABASE_JOB
    ]
    return urn


def test_pg_dump_needs_the_jobs_put_only_key_and_external_needs_none(
    stack_values: Callable[[str], dict[str, Any]],
) -> None:
    values = _postgres(stack_values("prod"), PG_DUMP)
    for key in S3_KEYS:
        values.pop(key, None)
    assert sorted(_refused(values).keys) == sorted(S3_KEYS)
    external = _postgres(stack_values("prod"), EXTERNAL_POSTGRES)
    for key in S3_KEYS:
        external.pop(key, None)
    graph = run_program("prod", external)
    jobs = [unwrap(r.inputs)["metadata"]["name"] for r in graph.of_type("kubernetes:batch/v1:CronJob")]
    assert jobs == [render.INVENTORY_JOB]


def test_the_policy_pack_passes_a_pg_dump_stack(pg_dump_graph: Graph) -> None:
    """Every mandatory rule, on the stack with the dump job: its image is pinned (a digest: PostgreSQL's two-part
    releases are not X.Y.Z, and official images re-push tags), its Secret is secret."""
    from tests.test_policies import ALL_VALIDATORS, violations

    found = [v for validator in ALL_VALIDATORS for v in violations(validator, pg_dump_graph.resources)]
    assert found == []
