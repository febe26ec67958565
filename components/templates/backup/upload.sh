#!/usr/bin/env bash
# Uploads ${SRC}/payload as <KEY_PREFIX>/<stamp><SUFFIX>, then as <KEY_PREFIX>/latest<SUFFIX>, so
# `latest` never names an object that failed to upload. Runs in the aws-cli image. Credentials come
# from the mounted shared-credentials file (AWS_SHARED_CREDENTIALS_FILE), never from the environment
# or a command line. Environment: S3_ENDPOINT, BUCKET, KEY_PREFIX, SUFFIX, S3_ADDRESSING_STYLE, SRC.
set -euo pipefail

stamp="$(cat "${SRC}/stamp")"
# path or virtual; AWS_CONFIG_FILE points into an emptyDir, the image's home is not writable.
aws configure set default.s3.addressing_style "${S3_ADDRESSING_STYLE}"
for name in "${stamp}" latest; do
  aws s3 cp --only-show-errors --endpoint-url "${S3_ENDPOINT}" \
    "${SRC}/payload" "s3://${BUCKET}/${KEY_PREFIX}/${name}${SUFFIX}"
done
echo "uploaded s3://${BUCKET}/${KEY_PREFIX}/${stamp}${SUFFIX} and latest${SUFFIX}"
