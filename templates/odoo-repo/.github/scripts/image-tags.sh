#!/usr/bin/env bash
# Reads VERSION (X.Y.Z) and prints the image tags as GitHub step outputs:
#   version=X.Y.Z  versioned=<image>:uat-vX.Y.Z  latest=<image>:uat-latest
#   image-tags.sh VERSION registry/repository
set -euo pipefail
FILE="${1:?usage: image-tags.sh VERSION <registry>/<repository>}"
IMAGE="${2:?usage: image-tags.sh VERSION <registry>/<repository>}"
[ -f "$FILE" ] || { echo "image-tags: $FILE not found" >&2; exit 1; }
VERSION="$(tr -d ' \r\n' < "$FILE")"
VERSION="${VERSION#v}"
if ! [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "image-tags: $FILE must hold X.Y.Z (got '$VERSION')" >&2
  exit 1
fi
case "$IMAGE" in */) echo "image-tags: no repository in '$IMAGE' (set vars.REGISTRY_REPOSITORY)" >&2; exit 1 ;; esac
echo "version=$VERSION"
echo "versioned=$IMAGE:uat-v$VERSION"
echo "latest=$IMAGE:uat-latest"
