#!/usr/bin/env bash
# The README's promise, checked on a fresh Debian 12: bootstrap a bare bookworm root (debootstrap minbase,
# Debian's packages only, from this host's Debian mirror), give it only this host's package-source
# configuration (apt sources, pip and npm configuration, CA certificates, proxy variables), run the
# README's prerequisite lines exactly as written, clone this repository inside with the git they installed,
# and run the README's two commands there exactly as written (the first ```bash block of README.md).
#
#   tools/ci/fresh_machine.sh [REPO]    as root; clones REPO's committed HEAD (default: this checkout)
#   tools/ci/fresh_machine.sh --plan    print what would run inside, read from README.md, and exit
#
# Prints each phase's duration at the end, also on failure (and which phase failed). Everything runs in a
# private mount namespace: no mount outlives the run. On exit, processes left inside the root are stopped
# and the root is removed (FRESH_KEEP=1 keeps it). Settings: FRESH_WORKDIR (parent of the root, default
# /var/tmp), FRESH_MIRROR (default: the host's bookworm mirror), FRESH_CACHE (debootstrap's download
# cache, kept between runs outside the root; default /var/cache/dsaas-fresh-debootstrap).
set -euo pipefail

SUITE=bookworm
CLONE_DIR=/root/dsaas
SOURCE_MOUNT=/mnt/dsaas.git
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Variables that tell package clients (pip, npm, apt, go) where and how to fetch; nothing else crosses into the root.
PASS_VARS='^(GOPROXY|GOSUMDB|GONOSUMDB|GOPRIVATE|GONOPROXY|GOINSECURE|PIP_[A-Z0-9_]+|NPM_CONFIG_[A-Z0-9_]+|npm_config_[a-z0-9_]+|[a-z]+_proxy|[A-Z]+_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|CI)$'

say() { printf '==> [fresh] %s\n' "$*"; }
die() {
  printf 'fresh_machine: %s\n' "$*" >&2
  exit 2
}

# readme_block prerequisites|commands FILE: the command lines of a ```bash block, comments dropped.
# "commands" is the README's first block; "prerequisites" the first block under "## Prerequisites".
readme_block() {
  awk -v kind="$1" '
    /^## / { in_section = ($0 == "## Prerequisites") }
    !done && /^```bash$/ && (kind == "commands" || in_section) { in_block = 1; next }
    in_block && /^```$/ { in_block = 0; done = 1; next }
    in_block {
      sub(/(^|[[:space:]]+)#.*$/, "")
      sub(/^[[:space:]]+/, "")
      if ($0 != "") print
    }' "$2"
}

read_plan() {
  mapfile -t PREREQS < <(readme_block prerequisites "$1")
  mapfile -t COMMANDS < <(readme_block commands "$1")
  ((${#PREREQS[@]} > 0)) || die "$1 has no \`\`\`bash block under '## Prerequisites'"
  ((${#COMMANDS[@]} > 0)) || die "$1 has no \`\`\`bash block"
}

print_plan() {
  echo "prerequisites (README.md, ## Prerequisites), as root in the fresh root:"
  printf '  %s\n' "${PREREQS[@]}"
  echo "commands (README.md, first block), in a clone at $CLONE_DIR:"
  printf '  %s\n' "${COMMANDS[@]}"
}

# --- outer process: the host's mount namespace -----------------------------------------------------------

outer() {
  local repo=$1 work rc=0 start=$SECONDS
  [[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot, mounts)"
  mkdir -p "${FRESH_WORKDIR:-/var/tmp}"
  work=$(mktemp -d "${FRESH_WORKDIR:-/var/tmp}/dsaas-fresh.XXXXXX")
  work=$(realpath "$work")
  # Nothing is mounted under $work in this namespace, so removing it never reaches into /dev or /proc.
  # shellcheck disable=SC2064 # expand $work now
  trap "finish_outer '$work'" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  unshare --mount --propagation private -- "$BASH" "$0" --inside "$work" "$repo" || rc=$?
  say "total $((SECONDS - start)) s, exit status $rc"
  return "$rc"
}

finish_outer() {
  if [[ ${FRESH_KEEP:-0} == 1 ]]; then
    say "kept $1/root (FRESH_KEEP=1); remove it with: rm -rf --one-file-system $1"
  else
    rm -rf --one-file-system "$1"
  fi
}

# --- inner process: a private mount namespace ------------------------------------------------------------

PHASES=()
CURRENT=""
PHASE_START=0

phase() {
  CURRENT=$1
  shift
  PHASE_START=$SECONDS
  say "phase: $CURRENT"
  "$@"
  PHASES+=("$(printf '%-26s %5d s' "$CURRENT" $((SECONDS - PHASE_START)))")
  CURRENT=""
}

finish_inner() {
  local rc=$?
  set +e
  say "phase durations:"
  ((${#PHASES[@]} == 0)) || printf '    %s\n' "${PHASES[@]}"
  if [[ -n $CURRENT ]]; then
    printf '    %-26s %5d s   FAILED (exit status %d)\n' "$CURRENT" $((SECONDS - PHASE_START)) "$rc"
  fi
  stop_leftovers
  umount -R "$ROOT" 2>/dev/null || umount -R -l "$ROOT" 2>/dev/null
  exit "$rc"
}

# Processes still running inside the root (daemons a test or a package script left behind), by id.
stop_leftovers() {
  local pids=() p
  for _ in 1 2 3; do
    pids=()
    for p in /proc/[0-9]*; do
      [[ $(readlink "$p/root" 2>/dev/null) == "$ROOT" ]] && pids+=("${p#/proc/}")
    done
    ((${#pids[@]} > 0)) || return 0
    say "stopping processes left in the root: ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null
    sleep 2
  done
  kill -KILL "${pids[@]}" 2>/dev/null
}

# The host's Debian mirror for $SUITE, from its apt sources (deb822 .sources and one-line .list files).
host_mirror() {
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local existing=() f
  for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
  ((${#existing[@]} > 0)) || return 0
  awk -v suite="$SUITE" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") { split(uris, u, " "); print u[1] }
      types = suites = uris = ""
    }
    FNR == 1 { flush() }
    /^[[:space:]]*$/ { flush(); next }
    /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0; next }
    /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0; next }
    /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0; next }
    $1 == "deb" { line = $0; gsub(/\[[^]]*\]/, "", line); split(line, w, " "); if (w[3] == suite) print w[2] }
    END { flush() }' "${existing[@]}" | head -n 1
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

bootstrap() {
  local mirror=${FRESH_MIRROR:-$(host_mirror)} cache=${FRESH_CACHE:-/var/cache/dsaas-fresh-debootstrap}
  [[ -n $mirror ]] || die "no Debian mirror for $SUITE in /etc/apt/sources*; set FRESH_MIRROR"
  ensure_debootstrap
  mkdir -p "$cache"
  say "debootstrap --variant=minbase $SUITE from $mirror (log: $WORK/debootstrap.log)"
  if ! debootstrap --variant=minbase --cache-dir="$cache" "$SUITE" "$ROOT" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 40 "$WORK/debootstrap.log"
    return 1
  fi
}

# copy_same_path FILE...: each existing file to the same path inside the root (symlinks followed).
copy_same_path() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    mkdir -p "$ROOT$(dirname "$f")"
    cp -L "$f" "$ROOT$f"
  done
}

# Files named inside pip or npm configuration (CA bundles, constraints).
config_files() {
  sed -n -E 's/^[[:space:]]*(cert|cafile|client-cert|constraint|constraints)[[:space:]]*=[[:space:]]*(\/[^[:space:]]+).*/\2/p' "$@" 2>/dev/null || true
}

# all_local VALUE: every location in VALUE is a path or file:// URL, none of them present in the root.
all_local() {
  local location path
  for location in $1; do
    case $location in
      file://*) path=${location#file://} ;;
      /*) path=$location ;;
      *) return 1 ;;
    esac
    [[ -e $ROOT$path ]] && return 1
  done
  [[ -n $1 ]]
}

# drop_local_locations PIP_CONF: comment out find-links / index-url / extra-index-url settings that name
# only locations on this host's disk.
drop_local_locations() {
  local line key value out=()
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*(find-links|index-url|extra-index-url)[[:space:]]*=[[:space:]]*(.*)$ ]]; then
      key=${BASH_REMATCH[1]}
      value=${BASH_REMATCH[2]}
      if all_local "$value"; then
        say "left out of ${1#"$ROOT"}: $key = $value (a location on this host's disk)"
        line="# $line   (left out: on the host's disk only)"
      fi
    fi
    out+=("$line")
  done <"$1"
  printf '%s\n' "${out[@]}" >"$1"
}

configure_sources() {
  local f var host_home=${HOME:-/root} configs=() named=()
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # apt: the host's active sources replace debootstrap's one-line sources.list; of apt.conf.d only the
  # fetching settings (Acquire::: proxies, validity checks, index targets); the keyrings the sources name.
  rm -f "$ROOT/etc/apt/sources.list"
  copy_same_path /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
  copy_same_path /etc/apt/auth.conf /etc/apt/auth.conf.d/* /etc/apt/trusted.gpg.d/*
  for f in /etc/apt/apt.conf.d/*; do
    grep -qs 'Acquire' "$f" && copy_same_path "$f"
  done
  while IFS= read -r f; do
    [[ -e $ROOT$f ]] || copy_same_path "$f"
  done < <(sed -n -E 's/.*[Ss]igned-[Bb]y[:=][[:space:]]*(\/[^] ]+).*/\1/p' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null)
  # CA certificates: the local ones (update-ca-certificates in the root picks them up) and the bundle the
  # package clients are pointed at.
  if [[ -d /usr/local/share/ca-certificates ]]; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
  fi
  copy_same_path /etc/ssl/certs/ca-certificates.crt
  for var in SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS PIP_CERT; do
    [[ -n ${!var:-} ]] && copy_same_path "${!var}"
  done
  # pip and npm: system, XDG and root's own configuration (the root's HOME is /root).
  copy_same_path /etc/pip.conf /etc/xdg/pip/* /etc/npmrc "${PIP_CONFIG_FILE:-}" "${NPM_CONFIG_USERCONFIG:-}" \
    "${NPM_CONFIG_GLOBALCONFIG:-}"
  for f in "$host_home/.config/pip/pip.conf" "$host_home/.pip/pip.conf" "$host_home/.npmrc"; do
    if [[ -f $f ]]; then
      mkdir -p "$ROOT/root/$(dirname "${f#"$host_home"/}")"
      cp -L "$f" "$ROOT/root/${f#"$host_home"/}"
      configs+=("$f")
    fi
  done
  configs+=(/etc/pip.conf /etc/xdg/pip/pip.conf /etc/npmrc)
  mapfile -t named < <(config_files "${configs[@]}")
  ((${#named[@]} == 0)) || copy_same_path "${named[@]}"
  # Package locations on this host's own disk (a wheel folder, a file:// index) are no package source a
  # fresh machine has: they are left out (pip would only warn about each, for every package).
  for f in "$ROOT/etc/pip.conf" "$ROOT"/etc/xdg/pip/*.conf "$ROOT"/root/.config/pip/*.conf "$ROOT"/root/.pip/*.conf; do
    [[ -f $f ]] && drop_local_locations "$f"
  done
  # The environment inside: a login's basics, plus the host's package-client variables.
  CHROOT_ENV=(HOME=/root "PATH=$CHROOT_PATH")
  while IFS= read -r var; do
    [[ $var =~ $PASS_VARS ]] || continue
    if [[ $var =~ ^PIP_(FIND_LINKS|INDEX_URL|EXTRA_INDEX_URL)$ ]] && all_local "${!var}"; then
      say "left out $var=${!var} (a location on this host's disk)"
      continue
    fi
    CHROOT_ENV+=("$var=${!var}")
  done < <(compgen -e)
  say "environment inside: ${CHROOT_ENV[*]}"
}

mount_root() {
  # `unshare --mount` inside a chroot needs its / to be a mount point.
  mount --rbind "$ROOT" "$ROOT"
  mount --bind /proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --bind /dev "$ROOT/dev"
  mount --bind /dev/pts "$ROOT/dev/pts"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/dev/shm"
}

# in_root DIR COMMAND: COMMAND as written, by bash in DIR inside the root, no stdin, the root's environment.
in_root() {
  chroot "$ROOT" /usr/bin/env -i "${CHROOT_ENV[@]}" /bin/bash -c "cd \"\$1\" && eval \"\$2\"" in_root "$1" "$2" \
    </dev/null
}

prerequisites() {
  local line
  for line in "${PREREQS[@]}"; do
    say "\$ $line"
    in_root /root "$line"
  done
}

clone() {
  local head
  head=$(git -C "$REPO" rev-parse HEAD)
  git clone --quiet --bare --no-hardlinks "$REPO" "$WORK/source.git"
  mkdir -p "$ROOT$SOURCE_MOUNT"
  mount --bind "$WORK/source.git" "$ROOT$SOURCE_MOUNT"
  mount -o remount,bind,ro "$ROOT$SOURCE_MOUNT"
  say "\$ git clone $SOURCE_MOUNT $CLONE_DIR   (commit $head)"
  in_root /root "git clone --quiet $SOURCE_MOUNT $CLONE_DIR"
  [[ $(chroot "$ROOT" /usr/bin/git -C "$CLONE_DIR" rev-parse HEAD) == "$head" ]] || die "the clone is not at $head"
}

inner() {
  WORK=$1
  REPO=$2
  ROOT=$WORK/root
  trap finish_inner EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  git -C "$REPO" show HEAD:README.md >"$WORK/README.md"
  read_plan "$WORK/README.md"
  print_plan
  if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no) ]]; then
    say "note: $REPO has uncommitted changes; the fresh root gets its committed HEAD only"
  fi
  phase debootstrap bootstrap
  phase "package sources" configure_sources
  mount_root
  phase prerequisites prerequisites
  phase clone clone
  local command
  for command in "${COMMANDS[@]}"; do
    say "\$ $command   (in $CLONE_DIR)"
    phase "$command" in_root "$CLONE_DIR" "$command"
  done
  say "the README's commands passed on a fresh Debian 12"
}

case "${1:-}" in
  --inside) inner "$2" "$3" ;;
  --plan)
    read_plan "$(dirname "$0")/../../README.md"
    print_plan
    ;;
  -h | --help) sed -n '2,16p' "$0" ;;
  *)
    repo=$(git -C "${1:-$(dirname "$0")/../..}" rev-parse --show-toplevel)
    outer "$repo"
    ;;
esac
