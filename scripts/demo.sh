#!/usr/bin/env bash
# make demo: start the sandbox, import the sample manifest into it, show the summary and
# the sandbox's stats, stop the sandbox. Uses its own ledger so it can be run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-8765}
LEDGER=state/demo-ledger.db
KEY_FILE=$(mktemp)
chmod 600 "$KEY_FILE"
LOG=$(mktemp)
rm -f "$LEDGER" "$LEDGER"-wal "$LEDGER"-shm

"$BIN/importer" sandbox --port "$PORT" --latency-ms 20 --processing-seconds 1 >"$LOG" 2>&1 &
SANDBOX_PID=$!
cleanup() { kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true; rm -f "$KEY_FILE" "$LOG"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  grep -q '^API key: ' "$LOG" 2>/dev/null && break
  sleep 0.1
done
if ! grep -q '^API key: ' "$LOG"; then
  echo "The sandbox did not start:" >&2; cat "$LOG" >&2; exit 1
fi
grep '^API key: ' "$LOG" | sed 's/^API key: //' >"$KEY_FILE"
BASE_URL=$(grep -o 'http://[^ ]*' "$LOG" | head -1)
echo "== Sandbox running at $BASE_URL"

echo "== Dry run: importer plan manifests/sample.csv"
"$BIN/importer" plan manifests/sample.csv --timezone UTC --ledger "$LEDGER" || true

echo
echo "== Import: importer run manifests/sample.csv"
set +e
"$BIN/importer" run manifests/sample.csv --timezone UTC --ledger "$LEDGER" --base-url "$BASE_URL" --api-key-file "$KEY_FILE"
status=$?
set -e
echo "(exit code $status: 1 means some rows are invalid, as the sample intends)"

echo
echo "== Run it again: nothing is sent twice"
"$BIN/importer" run manifests/sample.csv --timezone UTC --ledger "$LEDGER" --base-url "$BASE_URL" --api-key-file "$KEY_FILE" --quiet || true
"$BIN/importer" status --ledger "$LEDGER" 2>/dev/null || true

echo
echo "== Sandbox stats"
"$BIN/python" - "$BASE_URL" <<'PY'
import json, sys, httpx
stats = httpx.get(sys.argv[1] + "/_sandbox/stats").json()
created = stats.get("created", {})
print(json.dumps(stats.get("requests", {}), indent=2))
print(f"engagements stored: {stats.get('engagements')}")
print(f"external_ids created more than once: {sum(1 for n in created.values() if n > 1)}")
PY
