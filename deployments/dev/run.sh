#!/usr/bin/env bash
# Starts the all-in-one demo: the dev identity provider, a demo upstream and
# gatehouse, all on loopback. It says "running" only once its own three
# processes are up and gatehouse is ready; Ctrl-C stops them all and exits 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=bin/gatehouse
config=deployments/dev/config.yaml
[ -x "$bin" ] || { echo "make run: $bin is missing: run 'make build' first" >&2; exit 1; }

# Every port the demo listens on (all on 127.0.0.1), with where it is set.
ports=(
  "8000|gatehouse's address in $config"
  "5443|gatehouse's grpc_address in $config"
  "28080|gatehouse's health_check_addr in $config"
  "9000|the dev IdP's --address in deployments/dev/run.sh, and idp_provider_url in $config"
  "8081|the demo upstream's --address in deployments/dev/run.sh, and the routes' to in $config"
)
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
busy=0
for entry in "${ports[@]}"; do
  port=${entry%%|*}
  if in_use "$port"; then
    echo "make run: port $port is already in use (${entry#*|})." >&2
    busy=1
  fi
done
if [ "$busy" = 1 ]; then
  echo "make run: is another 'make run' or gatehouse still running? Stop it, or free the port(s) above." >&2
  exit 1
fi

# This checkout's own shared_secret and cookie_secret, made once and kept.
"$bin" gen-secrets --dir bin/dev >/dev/null

pids=()
names=()
start() {
  local name=$1
  shift
  "$@" &
  pids+=($!)
  names+=("$name")
}
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
interrupted=0
trap 'interrupted=1' INT TERM
trap stop_all EXIT

# check_alive fails start-up when one of our processes has exited (a port
# taken after all, a bad flag): its own message is above.
check_alive() {
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "make run: ${names[$i]} exited during start-up; its message is above." >&2
      exit 1
    fi
  done
}

# wait_ready waits until url answers 200 while our processes are alive.
wait_ready() {
  local url=$1 what=$2
  for _ in $(seq 1 300); do
    if [ "$interrupted" = 1 ]; then stop_all; echo "make run: stopped."; exit 0; fi
    check_alive
    if "$bin" healthcheck --timeout 1s --url "$url" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "make run: $what did not answer at $url within 30 s." >&2
  exit 1
}

start "the dev IdP" "$bin" dev-idp --address 127.0.0.1:9000 --issuer http://localhost:9000 \
  --client-id gatehouse --client-secret dev-client-secret \
  --redirect-uri http://authenticate.localhost:8000/oauth2/callback
start "the demo upstream" "$bin" demo-upstream --address 127.0.0.1:8081
# gatehouse starts once the IdP answers, so that its first discovery of the
# IdP succeeds.
wait_ready http://127.0.0.1:9000/.well-known/openid-configuration "the dev IdP"
wait_ready http://127.0.0.1:8081/ "the demo upstream"
start "gatehouse" "$bin" run --config "$config"
wait_ready http://127.0.0.1:28080/readyz "gatehouse"
check_alive

cat <<MSG

  gatehouse is running. Open in your browser:

      http://verify.localhost:8000/

  Sign in as anyone at the dev identity provider; the demo page shows the
  identity headers and JWT it received. Try groups "admins" and
  http://admins.localhost:8000/ for a policy on groups. Ctrl-C stops.

MSG

while :; do
  wait -n "${pids[@]}" || true
  if [ "$interrupted" = 1 ]; then break; fi
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "make run: ${names[$i]} exited; stopping the others." >&2
      exit 1
    fi
  done
done
stop_all
echo "make run: stopped."
