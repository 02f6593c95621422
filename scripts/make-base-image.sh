#!/usr/bin/env bash
# Builds a local Debian bookworm base image with Python 3 (allmysms-base:bookworm) for machines
# that cannot pull python:3.12-slim from a registry but can reach a Debian mirror.
#
#   scripts/make-base-image.sh [--force] [--tag NAME:TAG]
#
# It debootstraps a minimal bookworm (python3, python3-venv, python3-pip, ca-certificates) from
# the mirror this machine's apt already uses, copies this machine's extra CA certificates in
# (a TLS-inspecting proxy needs them for pip inside the build), and imports the tree with
# `docker import`. Needs root and a running Docker engine. Idempotent: an existing image is kept
# unless --force is given.
set -euo pipefail

TAG="allmysms-base:bookworm"
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --tag) TAG="${2:?--tag needs a value}"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "make-base-image: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[make-base-image] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "make-base-image: debootstrap needs root" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "make-base-image: no Docker engine answers (start dockerd first)" >&2
  exit 2
fi
if [ "$FORCE" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG exists already (use --force to rebuild)"
  echo "$TAG"
  exit 0
fi

# The mirror apt already uses here: deb822 "URIs:" lines first, then one-line "deb URL suite".
# Security and updates suites live elsewhere; the first plain Debian archive URL is the one.
mirror=""
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  while read -r url; do
    case "$url" in
      *debian-security*|*security.debian.org*) continue ;;
      *debian*) mirror="$url"; break ;;
    esac
  done < <(awk '/^[[:space:]]*URIs:/ {for (i = 2; i <= NF; i++) print $i}
                /^[[:space:]]*deb[[:space:]]/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' "$f")
  [ -n "$mirror" ] && break
done
mirror="${mirror:-http://deb.debian.org/debian}"
log "Debian mirror: $mirror"

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
    >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

workdir="$(mktemp -d /tmp/allmysms-base.XXXXXX)"
cleanup() {
  # debootstrap may leave /proc or /sys mounted in the tree if it was interrupted.
  for m in proc sys dev/pts dev; do
    mountpoint -q "$workdir/root/$m" 2>/dev/null && umount -l "$workdir/root/$m" || true
  done
  rm -rf --one-file-system "$workdir"
}
trap cleanup EXIT

root="$workdir/root"
log "debootstrap bookworm into $root (a few minutes)"
if ! debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$root" "$mirror" >"$workdir/debootstrap.log" 2>&1; then
  tail -n 20 "$workdir/debootstrap.log" >&2
  echo "make-base-image: debootstrap failed (log above)" >&2
  exit 1
fi

# Extra CA certificates of this machine (e.g. a TLS-inspecting egress proxy): without them pip
# inside `docker build` cannot reach the package index.
extra=0
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$crt" ] || continue
  install -D -m 0644 "$crt" "$root/usr/local/share/ca-certificates/$(basename "$crt")"
  extra=$((extra + 1))
done
if [ "$extra" -gt 0 ]; then
  log "adding $extra extra CA certificate(s)"
  # (its rehash step warns about the bundle file itself; only a failure matters)
  chroot "$root" update-ca-certificates >"$workdir/ca.log" 2>&1 \
    || { cat "$workdir/ca.log" >&2; exit 1; }
fi

# Keep the image small: no package lists, no downloaded .debs, no docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
: >"$root/etc/resolv.conf"
rm -f "$root/etc/hostname"

log "importing as $TAG"
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  --message "debootstrap --variant=minbase bookworm + python3 (allmysms-mockserver)" \
  - "$TAG" >/dev/null
log "done: $(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$TAG"
