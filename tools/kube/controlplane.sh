#!/usr/bin/env bash
# Start etcd + kube-apiserver on loopback. Usage: controlplane.sh start|stop  (BIN, W env overridable)
set -euo pipefail
BIN=${BIN:-${KUBE_ASSETS:-$HOME/.cache/gatehouse-kube}}
W=${W:-${TMPDIR:-/tmp}/kube-controlplane}
case "${1:-start}" in
stop)
  for p in apiserver etcd; do   # apiserver first, then etcd
    [ -f "$W/$p.pid" ] || continue
    pid=$(cat "$W/$p.pid"); kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; rm -f "$W/$p.pid"
  done
  exit 0;;
esac
rm -rf "$W"; mkdir -p "$W/certs" "$W/etcd"
openssl genrsa -out "$W/certs/sa.key" 2048 2>/dev/null
openssl rsa -in "$W/certs/sa.key" -pubout -out "$W/certs/sa.pub" 2>/dev/null
TOKEN=$(openssl rand -hex 16)
echo "$TOKEN,admin,admin,system:masters" > "$W/tokens.csv"
t0=$(date +%s.%N)
"$BIN/etcd" --name=test --data-dir="$W/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=test=http://127.0.0.1:2380 --unsafe-no-fsync >"$W/etcd.log" 2>&1 &
echo $! >"$W/etcd.pid"
until curl -sf http://127.0.0.1:2379/health >/dev/null; do sleep 0.1; done
t1=$(date +%s.%N)
"${APISERVER:-$BIN/kube-apiserver}" --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port=6443 \
  --etcd-servers=http://127.0.0.1:2379 --cert-dir="$W/certs" \
  --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
  --authorization-mode=RBAC --disable-admission-plugins=ServiceAccount \
  --service-account-issuer=https://127.0.0.1:6443/ \
  --service-account-key-file="$W/certs/sa.pub" --service-account-signing-key-file="$W/certs/sa.key" \
  --endpoint-reconciler-type=none --token-auth-file="$W/tokens.csv" >"$W/apiserver.log" 2>&1 &
echo $! >"$W/apiserver.pid"
for i in $(seq 1 1200); do
  if curl -sfk -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz >/dev/null; then break; fi
  kill -0 "$(cat $W/apiserver.pid)" 2>/dev/null || { echo "apiserver died"; tail -30 "$W/apiserver.log"; exit 1; }
  sleep 0.1
done
t2=$(date +%s.%N)
cat >"$W/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: $W/certs/apiserver.crt
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
KC
echo "etcd ready in $(echo "$t1 - $t0" | bc)s; kube-apiserver ready in $(echo "$t2 - $t1" | bc)s; KUBECONFIG=$W/kubeconfig"
