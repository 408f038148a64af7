/**
 * A `docker` stand-in for running the real docker/ops/odoo-ops against a real PostgreSQL (ODOO_OPS_PG=host)
 * without an engine: the Odoo image is a stand-in in every local suite anyway, and what the job tests
 * look at is odoo-ops and the database, not containers. It answers the calls odoo-ops makes:
 *  - `docker compose version`, `docker ps` (no container: web is not running), `docker image inspect`
 *    (every image whose name has no `missing` is present);
 *  - `docker compose run ... web odoo -d DB -u MODS --stop-after-init`: what `odoo -u` does to the
 *    tables it touches — `ir_module_module.state` is `to upgrade` while it runs, `installed` after —,
 *    taking $STANDIN_MIGRATE_SECONDS, and appending one row to `migration_runs` (a marker written once
 *    per run of the migration: the tests count them); $STANDIN_MIGRATE_FAIL=1 makes it end like a
 *    failed update (exit 1, a CRITICAL line, the module left `to upgrade`);
 *  - `docker run ... --entrypoint sh IMAGE -c SCRIPT ARGS`: runs the script here (the filestore
 *    folder /var/lib/odoo does not exist on a test machine: an empty filestore); with $STANDIN_DATA set,
 *    the script's /var/lib/odoo is that folder (the VM's own data volume: filestores round-trip).
 */
export const DOCKER_STANDIN = String.raw`#!/bin/bash
log() { printf '%s\n' "$*" >> "${'$'}{STANDIN_LOG:-/dev/null}"; }
log "docker $*"
case "$1" in
  compose)
    shift
    [ "$1" = version ] && { echo "Docker Compose version v2.0.0-standin"; exit 0; }
    while [ $# -gt 0 ] && [ "$1" != run ]; do shift; done
    [ "$1" = run ] || exit 0
    while [ $# -gt 0 ] && [ "$1" != odoo ]; do shift; done
    shift
    db=""; mods=""
    while [ $# -gt 0 ]; do case "$1" in -d) db=$2; shift 2 ;; -u) mods=$2; shift 2 ;; *) shift ;; esac; done
    q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
    echo "$(date -u '+%F %T') 1 INFO $db odoo.modules.loading: updating modules $mods"
    q "UPDATE ir_module_module SET state = 'to upgrade' WHERE state = 'installed'" || exit 1
    sleep "${'$'}{STANDIN_MIGRATE_SECONDS:-1}"
    if [ "${'$'}{STANDIN_MIGRATE_FAIL:-0}" = 1 ]; then
      echo "$(date -u '+%F %T') 1 CRITICAL $db odoo.service.server: Failed to initialize database"
      exit 1
    fi
    q "INSERT INTO migration_runs (modules) VALUES ('$mods')" || exit 1
    q "UPDATE ir_module_module SET state = 'installed' WHERE state = 'to upgrade'" || exit 1
    echo "$(date -u '+%F %T') 1 INFO $db odoo.modules.loading: modules updated"
    exit 0
    ;;
  ps) exit 0 ;;
  image)
    for a in "$@"; do last=$a; done
    case "$last" in *missing*) exit 1 ;; esac
    echo "sha256:$(printf '%s' "$last" | sha256sum | cut -c1-64)"
    exit 0
    ;;
  run)
    while [ $# -gt 0 ] && [ "$1" != -c ]; do shift; done
    shift
    script=$1; shift
    [ -n "${'$'}{STANDIN_DATA:-}" ] && script=${'$'}{script//\/var\/lib\/odoo/$STANDIN_DATA}
    exec sh -c "$script" "$@"
    ;;
esac
echo "docker stand-in: $1 is not answered" >&2
exit 1
`;
