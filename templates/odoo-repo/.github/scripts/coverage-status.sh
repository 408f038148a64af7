#!/usr/bin/env bash
# Coverage gate of the Odoo repository CI, and the commit status the pipeline's intake gate reads.
#   coverage-status.sh coverage-total.txt gate the measured coverage (`coverage report --format=total`), publish it
#   coverage-status.sh --carry-forward    no addon changed: publish the base commit's coverage again
# Env: GH_TOKEN, GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_API_URL (set by Actions), BASE_SHA,
# COVERAGE_MIN (80), COVERAGE_CONTEXT (coverage), COVERAGE_TOLERANCE (0 points), ADDONS (description).
# Status: context COVERAGE_CONTEXT, description "Coverage: NN.N % of lines (addons)" — the pipeline
# reads the first "NN.N %" of the description (shared/domain/coverage-gate.ts).
set -euo pipefail
MIN="${COVERAGE_MIN:-80}"
CONTEXT="${COVERAGE_CONTEXT:-coverage}"
TOLERANCE="${COVERAGE_TOLERANCE:-0}"
: "${GITHUB_REPOSITORY:?}" "${GITHUB_SHA:?}" "${GH_TOKEN:?}"
API="${GITHUB_API_URL:-https://api.github.com}"
CURL=(curl -fsS --retry 3 -H "Authorization: Bearer $GH_TOKEN" -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28")

base_percent() {
  [ -n "${BASE_SHA:-}" ] || return 0
  "${CURL[@]}" "$API/repos/$GITHUB_REPOSITORY/commits/$BASE_SHA/status" 2>/dev/null \
    | CONTEXT="$CONTEXT" node -e '
let raw = "";
process.stdin.on("data", (c) => (raw += c)).on("end", () => {
  const s = (JSON.parse(raw).statuses || []).find((x) => x.context === process.env.CONTEXT && x.state === "success");
  const m = /(\d{1,3}(?:[.,]\d+)?)\s*%/.exec((s && s.description) || "");
  if (m) console.log(m[1].replace(",", "."));
});' || true
}

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

publish() { # state description
  body="{\"state\":$(json_string "$1"),\"context\":$(json_string "$CONTEXT"),\"description\":$(json_string "${2:0:140}")}"
  "${CURL[@]}" -X POST -d "$body" "$API/repos/$GITHUB_REPOSITORY/statuses/$GITHUB_SHA" >/dev/null
  echo "$CONTEXT: $1 — $2"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then echo "**$CONTEXT**: $1 — $2" >> "$GITHUB_STEP_SUMMARY"; fi
}

BASE="$(base_percent)"

if [ "${1:-}" = "--carry-forward" ]; then
  if [ -n "$BASE" ]; then
    publish success "Coverage: ${BASE} % of lines (no addon changed, carried from ${BASE_SHA:0:7})"
  else
    publish success "Coverage: 100.0 % of lines (no addon changed)"
  fi
  exit 0
fi

FILE="${1:?usage: coverage-status.sh coverage-total.txt | --carry-forward}"
RAW="$(tr -d ' \r\n%' < "$FILE" 2>/dev/null || true)"
if ! [[ "$RAW" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  publish error "Coverage: no report (tests did not run to the end)"
  exit 1
fi
PCT="$(awk -v p="$RAW" 'BEGIN { printf "%.1f", p }')"
LABEL="Coverage: ${PCT} % of lines${ADDONS:+ (${ADDONS})}"

below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

if below "$PCT" "$MIN"; then
  publish failure "$LABEL, below the minimum ${MIN} %"
  exit 1
fi
if [ -n "$BASE" ] && below "$(awk -v a="$PCT" -v t="$TOLERANCE" 'BEGIN { print a + t }')" "$BASE"; then
  publish failure "$LABEL, below the base branch (${BASE} %)"
  exit 1
fi
publish success "$LABEL"
