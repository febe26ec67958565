#!/usr/bin/env bash
# Uploads ${SRC}/payload as <KEY_PREFIX>/<stamp><SUFFIX>, then as <KEY_PREFIX>/latest<SUFFIX>, so
# `latest` never names an object that failed to upload. Runs in the aws-cli image. Credentials come
# from the mounted shared-credentials file (AWS_SHARED_CREDENTIALS_FILE), never from the environment
# or a command line. Environment: S3_ENDPOINT, BUCKET, KEY_PREFIX, SUFFIX, S3_ADDRESSING_STYLE, SRC, and
# optionally SSE (AES256 or aws:kms) and SSE_KMS_KEY_ID: server-side encryption asked for on every object.
# The key is put-only on its own folder, so nothing here lists, reads or deletes.
set -euo pipefail

stamp="$(cat "${SRC}/stamp")"
encryption=()
if [ -n "${SSE:-}" ]; then
  encryption+=(--sse "${SSE}")
fi
if [ -n "${SSE_KMS_KEY_ID:-}" ]; then
  encryption+=(--sse-kms-key-id "${SSE_KMS_KEY_ID}")
fi
# path or virtual; AWS_CONFIG_FILE points into an emptyDir, the image's home is not writable.
aws configure set default.s3.addressing_style "${S3_ADDRESSING_STYLE}"
for name in "${stamp}" latest; do
  aws s3 cp --only-show-errors --endpoint-url "${S3_ENDPOINT}" "${encryption[@]}" \
    "${SRC}/payload" "s3://${BUCKET}/${KEY_PREFIX}/${name}${SUFFIX}"
done
echo "uploaded s3://${BUCKET}/${KEY_PREFIX}/${stamp}${SUFFIX} and latest${SUFFIX}"
