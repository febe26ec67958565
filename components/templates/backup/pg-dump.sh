#!/usr/bin/env bash
# Dumps the hub's PostgreSQL database with pg_dump (custom format: compressed, restored with pg_restore,
# table by table if need be). Runs in the official PostgreSQL image. The connection comes from libpq's
# variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, optional PGSSLMODE...) in the Secret made from
# dsaas:hubDatabaseUrl, never from a command line. Environment: those, PG_CLIENT_MAJOR, OUT.
set -euo pipefail

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
# One query first, so an unreachable server, a refused login or a too new server is one clear line.
if ! server="$(psql --no-password --no-psqlrc --tuples-only --no-align \
  --command 'SHOW server_version_num' 2>"${OUT}/connect.err")"; then
  echo "cannot reach the hub database ${PGUSER}@${PGHOST}:${PGPORT}/${PGDATABASE}: $(head -n 1 "${OUT}/connect.err")" >&2
  echo "check dsaas:hubDatabaseUrl (host, port, user, password, sslmode) and that the nodes may reach it" >&2
  exit 1
fi
if [ "$((server / 10000))" -gt "${PG_CLIENT_MAJOR}" ]; then
  echo "the hub database runs PostgreSQL $((server / 10000)); this pg_dump is ${PG_CLIENT_MAJOR} and dumps no newer" \
    "server: bump POSTGRES_CLIENT_IMAGE in config/versions.py" >&2
  exit 1
fi
pg_dump --no-password --format=custom --compress=6 --file="${OUT}/payload.tmp"
# A custom-format archive starts with "PGDMP"; pg_restore --list reads its whole table of contents.
if [ "$(head -c 5 "${OUT}/payload.tmp")" != "PGDMP" ] || ! pg_restore --list "${OUT}/payload.tmp" >/dev/null; then
  echo "the dump of ${PGDATABASE} is not a readable pg_dump archive" >&2
  exit 1
fi
mv "${OUT}/payload.tmp" "${OUT}/payload"
printf '%s\n' "${stamp}" >"${OUT}/stamp"
echo "hub database ${stamp}: $(wc -c <"${OUT}/payload") bytes from PostgreSQL ${server}"
