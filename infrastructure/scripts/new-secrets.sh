#!/usr/bin/env bash
# Generates what a new system needs before its first deployment and that the templates cannot make
# themselves: the webhook secret, the approval signing key, the pipeline SSH key pair and a pinned
# ed25519 host key per VM (with the SHA256 fingerprint the pipeline pins).
#
#   infrastructure/scripts/new-secrets.sh --azd          # azd env set ... for each value
#   infrastructure/scripts/new-secrets.sh --env FILE     # write NAME='value' lines to FILE (mode 600)
#
# Run it ONCE per system and keep the values (azd environment, GitHub environment secrets): a rebuild
# with the same values keeps the host key pins and outstanding approval links valid. Values that are
# already set in the azd environment are kept.
set -euo pipefail

MODE="${1:-}"
OUT="${2:-}"
case "$MODE" in
  --azd) command -v azd >/dev/null || { echo "new-secrets: azd is not installed" >&2; exit 1; } ;;
  --env) [ -n "$OUT" ] || { echo "usage: $0 --env FILE" >&2; exit 2; } ;;
  *) echo "usage: $0 --azd | --env FILE" >&2; exit 2 ;;
esac
command -v ssh-keygen >/dev/null || { echo "new-secrets: ssh-keygen is needed (openssh-client)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
[ "$MODE" = "--env" ] && { umask 077; : > "$OUT"; }

existing() { [ "$MODE" = "--azd" ] && azd env get-value "$1" >/dev/null 2>&1; }
put() {
  if [ "$MODE" = "--azd" ]; then
    if existing "$1"; then echo "new-secrets: $1 already set, kept"; return; fi
    azd env set "$1" "$2" >/dev/null
  else
    # single-quoted for `set -a; . FILE`; a value never contains a single quote here
    printf "%s='%s'\n" "$1" "$2" >> "$OUT"
  fi
  echo "new-secrets: $1 set"
}
random() { head -c "$1" /dev/urandom | base64 | tr -d '\n/+=' | head -c "$2"; }

put WEBHOOK_SECRET "$(random 48 40)"
put APPROVAL_SIGNING_KEY "$(random 96 64)"

ssh-keygen -q -t ed25519 -N '' -C odoo-mta-pipeline -f "$WORK/pipeline"
put SSH_PRIVATE_KEY "$(cat "$WORK/pipeline")"
put PIPELINE_SSH_PUBLIC_KEY "$(cat "$WORK/pipeline.pub")"

# The VM admin key (operators, through Bastion/run command): the caller's own public key.
ADMIN_KEY="${VM_ADMIN_SSH_PUBLIC_KEY:-}"
for f in "$HOME/.ssh/id_ed25519.pub" "$HOME/.ssh/id_ecdsa.pub" "$HOME/.ssh/id_rsa.pub"; do
  [ -n "$ADMIN_KEY" ] && break
  [ -f "$f" ] && ADMIN_KEY="$(cut -d' ' -f1-2 "$f")"
done
if [ -n "$ADMIN_KEY" ]; then
  put VM_ADMIN_SSH_PUBLIC_KEY "$ADMIN_KEY"
else
  echo "new-secrets: no SSH public key found for the VM admin: set VM_ADMIN_SSH_PUBLIC_KEY (azd env set VM_ADMIN_SSH_PUBLIC_KEY \"\$(cat key.pub)\")" >&2
fi

for ENVIRONMENT in UAT PROD; do
  KEY="$WORK/host-$ENVIRONMENT"
  ssh-keygen -q -t ed25519 -N '' -C "odoo-${ENVIRONMENT,,}-host" -f "$KEY"
  put "${ENVIRONMENT}_SSH_HOST_PRIVATE_KEY" "$(cat "$KEY")"
  put "${ENVIRONMENT}_SSH_HOST_PUBLIC_KEY" "$(cut -d' ' -f1-2 "$KEY.pub")"
  put "${ENVIRONMENT}_SSH_HOST_KEY" "$(ssh-keygen -l -E sha256 -f "$KEY.pub" | awk '{print $2}')"
done
