#!/usr/bin/env bash
# Runs the test tiers (design.md §8). Usage: scripts/test.sh [unit|compliance|integration|privileged|e2e|all]
# unit/compliance need nothing; integration starts its own etcd; privileged/e2e need root.
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-all}"
case "$tier" in
  all) dirs=(test/unit test/compliance test/integration test/privileged test/e2e) ;;
  unit|compliance|integration|privileged|e2e) dirs=("test/$tier") ;;
  *) echo "usage: scripts/test.sh [unit|compliance|integration|privileged|e2e|all]" >&2; exit 2 ;;
esac
[ "$tier" = all ] && npm run -s typecheck
[ -f dist/weftd.mjs ] || npm run -s build
files=()
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  while IFS= read -r f; do files+=("$f"); done < <(find "$d" -name '*.test.ts' | sort)
done
if [ ${#files[@]} -eq 0 ]; then echo "no test files under ${dirs[*]}" >&2; exit 1; fi
# spec for people; a TAP copy gives the totals for the plain closing line CI reads.
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
status=0
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "${files[@]}" || status=$?
pass=$(grep -E '^# pass [0-9]+' "$tap" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail [0-9]+' "$tap" | tail -1 | awk '{print $3}')
skip=$(grep -E '^# skipped [0-9]+' "$tap" | tail -1 | awk '{print $3}')
echo "tests: ${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit $status
