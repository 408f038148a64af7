#!/bin/sh
# Stand-in for the official image's entrypoint (the project's own docker/entrypoint.sh replaces it).
set -e
case "${1:-}" in
  -*) exec odoo "$@" ;;
  *) exec "$@" ;;
esac
