#!/bin/sh
# Run on the VM by the `install-odoo-ops` run command of modules/vm.bicep, on every deployment
# (idempotent). It is not part of the VM's custom data: Azure caps custom data at 64 KiB and says
# not to put secrets in it (docs/INFRASTRUCTURE.md).
#  - lays down /usr/local/bin/odoo-ops: the script embedded (base64) when the template was built, or,
#    when the template was built with opsScriptUrl, downloaded from there and checked against its sha256;
#  - installs the pinned SSH host key. The private key arrives as the protected parameter
#    HOST_PRIVATE_KEY (an environment variable of this script, never in the template's plain text).
set -eu
OPS_SCRIPT_B64='{{OPS_SCRIPT_B64}}'
URL='{{OPS_SCRIPT_URL}}'
SHA256='{{OPS_SCRIPT_SHA256}}'
HOST_PUBLIC_KEY='{{HOST_PUBLIC_KEY}}'
TARGET=/usr/local/bin/odoo-ops

# cloud-init creates the users and writes sshd's configuration: wait for it (first boot)
if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null || true; fi

TMP="$(mktemp)"
trap 'rm -f "$TMP" "$TMP.key"' EXIT
if [ -n "$OPS_SCRIPT_B64" ]; then
  printf '%s' "$OPS_SCRIPT_B64" | base64 -d > "$TMP"
elif [ -n "$URL" ]; then
  [ -n "$SHA256" ] || { echo "install-odoo-ops: opsScriptUrl needs opsScriptSha256" >&2; exit 1; }
  curl -fsSL --retry 5 --retry-delay 5 -o "$TMP" "$URL"
else
  echo "install-odoo-ops: no ops script embedded and no URL given" >&2
  exit 1
fi
if [ -n "$SHA256" ]; then
  echo "$SHA256  $TMP" | sha256sum -c - >/dev/null || { echo "install-odoo-ops: sha256 mismatch for the ops script" >&2; exit 1; }
fi
install -m 0755 -o root -g root "$TMP" "$TARGET"
echo "install-odoo-ops: installed $TARGET"

# Pinned host key: the pipeline refuses any other (UAT_SSH_HOST_KEY / PROD_SSH_HOST_KEY).
if [ -z "${HOST_PRIVATE_KEY:-}" ]; then
  echo "install-odoo-ops: HOST_PRIVATE_KEY (protected parameter) is missing" >&2
  exit 1
fi
umask 077
printf '%s\n' "$HOST_PRIVATE_KEY" > "$TMP.key"
unset HOST_PRIVATE_KEY
# the private key must be the pair of the pinned public key
if [ "$(ssh-keygen -y -f "$TMP.key" | cut -d' ' -f1-2)" != "$(printf '%s' "$HOST_PUBLIC_KEY" | cut -d' ' -f1-2)" ]; then
  echo "install-odoo-ops: the host private key does not match the pinned public key" >&2
  exit 1
fi
install -m 0600 -o root -g root "$TMP.key" /etc/ssh/ssh_host_ed25519_key
printf '%s\n' "$HOST_PUBLIC_KEY" > /etc/ssh/ssh_host_ed25519_key.pub
chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub
# only the pinned key is offered
rm -f /etc/ssh/ssh_host_rsa_key* /etc/ssh/ssh_host_ecdsa_key*
cat > /etc/ssh/sshd_config.d/40-odoo-mta-hostkey.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
CONF
systemctl restart ssh
echo "install-odoo-ops: pinned host key installed"
