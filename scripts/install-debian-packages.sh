#!/usr/bin/env bash
# The Debian packages this project needs, in one place: `.ci/run` installs every group, `npm run demo`
# installs the `sandbox` group when something the sandbox needs is missing and it runs as root
# (local/prerequisites.ts). Idempotent: apt-get skips what is installed. Network: the Debian mirror only.
#
#   scripts/install-debian-packages.sh            # every group (what `npm test` needs)
#   scripts/install-debian-packages.sh sandbox    # the sandbox VMs only (what `npm run demo` needs)
#   scripts/install-debian-packages.sh --list sandbox   # print the packages, install nothing
set -euo pipefail

# the sandbox VMs (test/support/sandbox.ts sandboxMissing): dockerd + docker CLI, compose, a registry,
# OpenSSH's sshd, flock, zstd, curl and jq (odoo-ops on the VM), debootstrap (the stand-in rootfs, once)
SANDBOX=(docker.io docker-compose docker-registry openssh-server openssh-client util-linux zstd curl jq
  debootstrap iproute2 ca-certificates)
# the test suites beside the sandbox: PostgreSQL clusters, Chromium for the UI suites, shellcheck for
# odoo-ops, a compiler for the native addons npm ci builds from source, git/zip for the packaging test
TESTS=(postgresql-15 postgresql-client-15 chromium python3 make g++ shellcheck openssl git zip unzip)

list=0
if [ "${1:-}" = "--list" ]; then
  list=1
  shift
fi
case "${1:-all}" in
  sandbox) PACKAGES=("${SANDBOX[@]}") ;;
  all) PACKAGES=("${SANDBOX[@]}" "${TESTS[@]}") ;;
  *)
    echo "install-debian-packages: unknown group '$1' (sandbox, all)" >&2
    exit 2
    ;;
esac

if [ "$list" = 1 ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-debian-packages: needs root (apt-get); as root run: apt-get install -y ${PACKAGES[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-packages: apt-get not found (this project's machines are Debian-like); install: ${PACKAGES[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-debian-packages: apt-get update"
apt-get update -qq
echo "install-debian-packages: apt-get install ${PACKAGES[*]}"
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
echo "install-debian-packages: done"
