#!/usr/bin/env bash
# Starts the all-in-one demo: the dev identity provider, a demo upstream and
# gatehouse, all on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bin/gatehouse
[ -x "$bin" ] || { echo "run 'make build' first" >&2; exit 1; }

# This checkout's own shared_secret and cookie_secret, made once and kept.
"$bin" gen-secrets --dir bin/dev >/dev/null

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$bin" dev-idp --address 127.0.0.1:9000 --issuer http://localhost:9000 \
  --client-id gatehouse --client-secret dev-client-secret \
  --redirect-uri http://authenticate.localhost:8000/oauth2/callback &
pids+=($!)
"$bin" demo-upstream --address 127.0.0.1:8081 &
pids+=($!)
"$bin" --config deployments/dev/config.yaml &
pids+=($!)

for _ in $(seq 1 100); do
  if "$bin" healthcheck --url http://127.0.0.1:28080/readyz >/dev/null 2>&1; then break; fi
  sleep 0.1
done
cat <<MSG

  gatehouse is running. Open in your browser:

      http://verify.localhost:8000/

  Sign in as anyone at the dev identity provider; the demo page shows the
  identity headers and JWT it received. Try groups "admins" and
  http://admins.localhost:8000/ for a policy on groups. Ctrl-C stops.

MSG
wait -n "${pids[@]}"
