#!/bin/sh
# Lays down the ops scripts (odoo-ops) from docker/ops/ of the pipeline release.
# Rendered by modules/vm.bicep: the script text is embedded (base64) when the template is built; a
# release URL with a sha256 is the fallback. Idempotent: used by cloud-init and by the run command.
set -eu
TARGET=/usr/local/bin/odoo-ops
EMBEDDED='{{OPS_SCRIPT_B64}}'
URL='{{OPS_SCRIPT_URL}}'
SHA256='{{OPS_SCRIPT_SHA256}}'
TMP="$(mktemp)"
trap 'rm -f "$TMP"' EXIT
if [ -n "$EMBEDDED" ]; then
  printf '%s' "$EMBEDDED" | base64 -d > "$TMP"
elif [ -n "$URL" ]; then
  curl -fsSL --retry 5 --retry-delay 5 -o "$TMP" "$URL"
  if [ -n "$SHA256" ]; then
    echo "$SHA256  $TMP" | sha256sum -c - >/dev/null || { echo "install-odoo-ops: sha256 mismatch for $URL" >&2; exit 1; }
  fi
else
  echo "install-odoo-ops: no ops script embedded and no URL given" >&2
  exit 1
fi
install -m 0755 -o root -g root "$TMP" "$TARGET"
echo "install-odoo-ops: installed $TARGET"
