#!/usr/bin/env bash
# npm run bench [name...]: runs bench/<name>.bench.ts (all when no name); each prints its figures
# and writes bench/results/<name>.json. Benchmarks that need root skip with a reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/weftd.cjs ] || npm run -s build
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in bench/*.bench.ts; do [ -e "$f" ] && names+=("$(basename "$f" .bench.ts)"); done
fi
status=0
for n in "${names[@]}"; do
  f="bench/$n.bench.ts"
  if [ ! -f "$f" ]; then echo "bench: no benchmark named '$n' (bench/*.bench.ts)" >&2; status=2; continue; fi
  echo "== bench $n"
  node --import tsx "$f" || status=1
done
exit $status
