#!/usr/bin/env bash
# Copies the hub's SQLite database with SQLite's online backup API. Runs in the hub image, as the hub's
# uid, in a pod beside the hub pod that mounts the hub's own volume (ReadWriteOnce allows every pod of
# one node): no API access, no exec into the hub. Environment: DATABASE, SCRIPT, OUT.
set -euo pipefail

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
if [ ! -f "${DATABASE}" ]; then
  echo "no hub database at ${DATABASE}: is the hub's volume mounted, has the hub ever started?" >&2
  exit 1
fi
python3 "${SCRIPT}" "${DATABASE}" >"${OUT}/payload.tmp"
if [ "$(head -c 15 "${OUT}/payload.tmp")" != "SQLite format 3" ]; then
  echo "the copy of ${DATABASE} is not an SQLite database" >&2
  exit 1
fi
mv "${OUT}/payload.tmp" "${OUT}/payload"
printf '%s\n' "${stamp}" >"${OUT}/stamp"
echo "hub database ${stamp}: $(wc -c <"${OUT}/payload") bytes"
