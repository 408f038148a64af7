#!/bin/bash
# Build the root filesystem of the sandbox stand-in images: Debian bookworm minbase with python3
# (+psycopg2), PostgreSQL 15 (server and client) and curl, pruned, as a tar on stdout-free path $1.
#   build-rootfs.sh OUT.tar [MIRROR]
# Needs root and debootstrap (≈3 min; the sandbox caches the tar keyed by a hash of docker/sandbox/**).
set -euo pipefail
out=${1:?usage: build-rootfs.sh OUT.tar [MIRROR]}
mirror=${2:-${DEBIAN_MIRROR:-http://deb.debian.org/debian}}
work=$(mktemp -d "${TMPDIR:-/tmp}/standin-rootfs.XXXXXX")
trap 'umount "$work/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=python3,python3-psycopg2,postgresql-15,postgresql-client-15,curl \
  bookworm "$work" "$mirror" >&2
# no cluster/service of the package's own, no caches, docs or man pages
rm -rf "$work"/var/lib/postgresql/15/main "$work"/etc/postgresql/15/main \
  "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* \
  "$work"/usr/share/doc/* "$work"/usr/share/man/* "$work"/usr/share/info/* \
  "$work"/usr/share/locale/* "$work"/var/log/*.log
tar --numeric-owner -C "$work" --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf "$out.partial" .
mv -f "$out.partial" "$out"
