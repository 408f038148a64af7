#!/bin/bash
# odoo-mta entrypoint: configuration from the environment and secret files, wait for PostgreSQL,
# refuse to serve a half-migrated database, then exec the command (default `odoo`).
#
# Environment (every one optional; see docker/.env.example):
#   DB_HOST (HOST)  DB_PORT (PORT)  DB_USER (USER)  DB_PASSWORD (PASSWORD)  DB_PASSWORD_FILE (PASSWORD_FILE)
#   DB_NAME         the one database this instance serves (also its dbfilter)
#   ADMIN_PASSWORD / ADMIN_PASSWORD_FILE   Odoo's master password (admin_passwd)
#   ODOO_HTTP_PORT  ODOO_WORKERS  ODOO_PROXY_MODE  ODOO_LIST_DB  ODOO_LOG_LEVEL
#   DB_WAIT_TIMEOUT seconds to wait for PostgreSQL (default 60)
#   ODOO_ALLOW_PENDING_MODULES=1  start even if modules are left 'to upgrade/install/remove'
# Settings go into a generated config file named by ODOO_RC (Odoo reads it), not onto the command
# line, so subcommands (`odoo shell`, `odoo neutralize`) get them too.
set -euo pipefail

log() { printf '%s odoo-mta-entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $1"; exit "${2:-1}"; }

# value of VAR, else of VAR_FILE's content (docker secrets), else of the fallbacks, else a default
secret_or_env() {
  local name=$1 fallback=$2 def=$3 v file
  v=${!name:-}
  file_var="${name}_FILE"; file=${!file_var:-}
  if [ -z "$v" ] && [ -n "$file" ]; then
    [ -r "$file" ] || die "$file_var=$file is not readable"
    v=$(<"$file")
  fi
  if [ -z "$v" ] && [ -n "$fallback" ]; then
    v=${!fallback:-}
    file_var="${fallback}_FILE"; file=${!file_var:-}
    if [ -z "$v" ] && [ -n "$file" ] && [ -r "$file" ]; then v=$(<"$file"); fi
  fi
  printf '%s' "${v:-$def}"
}

DB_HOST=$(secret_or_env DB_HOST HOST db)
DB_PORT=$(secret_or_env DB_PORT PORT 5432)
DB_USER=$(secret_or_env DB_USER USER odoo)
DB_PASSWORD=$(secret_or_env DB_PASSWORD PASSWORD '')
DB_NAME=$(secret_or_env DB_NAME '' '')
ADMIN_PASSWORD=$(secret_or_env ADMIN_PASSWORD '' '')
[[ "$DB_PORT" =~ ^[0-9]+$ ]] || die "DB_PORT must be a number, got '$DB_PORT'" 78

BASE_RC=${ODOO_BASE_RC:-/etc/odoo/odoo.conf}
GEN_RC=${ODOO_GENERATED_RC:-/tmp/odoo-mta.conf}
declare -A conf=(
  [db_host]=$DB_HOST [db_port]=$DB_PORT [db_user]=$DB_USER [db_password]=$DB_PASSWORD
  [http_port]=${ODOO_HTTP_PORT:-8069} [proxy_mode]=${ODOO_PROXY_MODE:-True}
  [list_db]=${ODOO_LIST_DB:-False} [log_level]=${ODOO_LOG_LEVEL:-info}
)
[ -n "$DB_NAME" ] && conf[db_name]=$DB_NAME && conf[dbfilter]="^${DB_NAME}\$"
[ -n "$ADMIN_PASSWORD" ] && conf[admin_passwd]=$ADMIN_PASSWORD
[ -n "${ODOO_WORKERS:-}" ] && conf[workers]=$ODOO_WORKERS

umask 077
{
  echo "[options]"
  if [ -r "$BASE_RC" ]; then
    # keep the base file's other options; ours replace same-named ones (Odoo rejects duplicates)
    while IFS= read -r line; do
      [[ "$line" =~ ^\[ ]] && continue
      key=${line%%=*}; key=${key//[[:space:]]/}
      [ -n "$key" ] && [ -n "${conf[$key]+x}" ] && continue
      printf '%s\n' "$line"
    done < "$BASE_RC"
  fi
  for k in "${!conf[@]}"; do printf '%s = %s\n' "$k" "${conf[$k]}"; done
} > "$GEN_RC"
export ODOO_RC=$GEN_RC

# the command: options alone mean `odoo <options>`
if [ $# -eq 0 ]; then set -- odoo; fi
case "$1" in -*) set -- odoo "$@" ;; esac

is_odoo=0; serving=0
if [ "$1" = odoo ] || [ "$1" = odoo-bin ]; then
  is_odoo=1; serving=1
  case "${2:-}" in ''|-*|server) ;; *) serving=0 ;; esac   # a subcommand (shell, neutralize, db, ...)
  for a in "${@:2}"; do
    case "$a" in --stop-after-init|-u|-i|--update|--update=*|--init|--init=*) serving=0 ;; esac
  done
fi

if [ "$is_odoo" = 1 ]; then
  export PGPASSWORD=$DB_PASSWORD
  wait=${DB_WAIT_TIMEOUT:-60}
  deadline=$((SECONDS + wait))
  until pg_isready -q -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d postgres -t 3; do
    [ $SECONDS -ge $deadline ] && die "PostgreSQL at $DB_HOST:$DB_PORT did not answer within ${wait}s" 69
    sleep 1
  done
  if [ "$serving" = 1 ] && [ -n "$DB_NAME" ] && [ "${ODOO_ALLOW_PENDING_MODULES:-0}" != 1 ]; then
    pending=$(psql -X -qAt -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d "$DB_NAME" -c \
      "SELECT string_agg(name || ':' || state, ', ' ORDER BY name) FROM ir_module_module WHERE state IN ('to upgrade','to install','to remove')" 2>/dev/null || true)
    if [ -n "$pending" ]; then
      die "refusing to start: database '$DB_NAME' is half-migrated (pending modules: $pending). Finish the migration (odoo-ops migrate <image>) or restore the backup (odoo-ops rollback); ODOO_ALLOW_PENDING_MODULES=1 overrides." 78
    fi
  fi
  unset PGPASSWORD
fi
exec "$@"
