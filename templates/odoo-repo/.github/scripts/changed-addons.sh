#!/usr/bin/env bash
# Prints the comma-separated addons (folders with __manifest__.py under ADDONS_DIR) that changed
# between two commits. No base (first push, new branch): every addon.
#   changed-addons.sh <base-sha> <head-sha> [addons-dir]
set -euo pipefail
BASE="${1:-}"
HEAD="${2:-HEAD}"
DIR="${3:-.}"
DIR="${DIR%/}"

all_addons() {
  find "$DIR" -mindepth 2 -maxdepth 2 -name __manifest__.py -printf '%h\n' | xargs -r -n1 basename | sort -u
}

if [ -z "$BASE" ] || [ "$BASE" = "0000000000000000000000000000000000000000" ] || ! git cat-file -e "$BASE^{commit}" 2>/dev/null; then
  all_addons | paste -sd, -
  exit 0
fi

prefix=""
[ "$DIR" != "." ] && prefix="$DIR/"
git diff --name-only "$BASE" "$HEAD" -- "${DIR}" \
  | sed -n "s#^${prefix}\([^/]*\)/.*#\1#p" \
  | sort -u \
  | while read -r addon; do [ -f "${prefix}${addon}/__manifest__.py" ] && echo "$addon"; done \
  | paste -sd, -
