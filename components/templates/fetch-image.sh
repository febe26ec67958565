#!/usr/bin/env bash
# Downloads the template's cloud image once per operator machine and prints its path. The file is
# trusted only if its SHA-256 is the pinned one (dsaas:vsphere.templateImage.sha256): HTTPS alone would
# trust whatever a mirror, CDN or intercepting proxy serves. A cached copy is checked again each time.
set -euo pipefail

: "${IMAGE_URL:?}" "${IMAGE_SHA256:?}"
if ! command -v curl >/dev/null; then
  echo "dsaas: fetching the template image needs curl on this machine (the operator's); install it (apt-get install curl)" >&2
  exit 1
fi
cache="${DSAAS_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dsaas/images}"
target="${cache}/${IMAGE_SHA256}.ova"
install -d -m 0700 "$cache"

digest_of() {
  sha256sum "$1" | awk '{print $1}'
}

if [ -s "$target" ] && [ "$(digest_of "$target")" = "$IMAGE_SHA256" ]; then
  echo "$target"
  exit 0
fi

partial="$(mktemp "${cache}/download.XXXXXX")"
trap 'rm -f "$partial"' EXIT
if ! curl -fsSL --retry 3 --retry-connrefused -o "$partial" "$IMAGE_URL"; then
  echo "dsaas: could not download ${IMAGE_URL}: check dsaas:vsphere.templateImage.url and that this machine reaches it" >&2
  exit 1
fi
found="$(digest_of "$partial")"
if [ "$found" != "$IMAGE_SHA256" ]; then
  echo "dsaas: ${IMAGE_URL} has SHA-256 ${found}, not the pinned ${IMAGE_SHA256}; refusing to use it." \
    "Fix: take the checksum from the release's SHA256SUMS (verify its signature) for dsaas:vsphere.templateImage.sha256," \
    "or point url at that exact release" >&2
  exit 1
fi
chmod 0600 "$partial"
mv "$partial" "$target"
trap - EXIT
echo "$target"
