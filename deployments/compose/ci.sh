#!/usr/bin/env bash
# The split deployment of docker-compose.yaml on a real Docker engine, with
# no registry at all: `make compose-docker`, and .ci/run after `make test`.
#
# On a fresh machine (as root) it
#   1. installs Debian's docker.io and debootstrap when missing;
#   2. starts a dockerd of its own: its own data root (kept, so the layer
#      cache survives between runs), exec root and socket, no default
#      bridge, compose networks from 10.214.0.0/16, no iptables rules on the
#      host (containers reach each other and nothing outside; published
#      ports are forwarded by docker-proxy on 127.0.0.1 only). It is stopped
#      by its PID when this script ends, whatever happens;
#   3. builds the compose v2 CLI plugin at COMPOSE_VERSION from the Go module
#      proxy into .tools (the binary is also kept in $CACHE by version);
#   4. builds every image locally: a scratch base with a non-root user for
#      gatehouse (deployments/Dockerfile, BASE_IMAGE and
#      GATEHOUSE_FROM=prebuilt), Redis and nginx (the edge) from Debian
#      packages in a debootstrap root file system (cached in $CACHE by its
#      package list), Prometheus from Debian's package too, and
#      pkg/grafanatest's server as the grafana service;
#   5. runs TestDockerCompose (deployments/docker_compose_test.go): `docker
#      compose up -d --build --wait` with deployments/compose/ci/override.yaml
#      (image names and the gatehouse build arguments only; it also keeps
#      published ports on 127.0.0.1), sign-in through the edge, scaling,
#      replicas killed and restarted under load, `docker compose down -v`.
#
# It prints how long each step took. Measured on the 2-core CI machine,
# shared and loaded: installing docker.io ~50s; dockerd answering in 1-2s;
# the compose plugin ~5-9 min cold (go build; then cached by version:
# 0.1s); debootstrap ~2 min cold (in the background; then cached); the
# images seconds; `up --build --wait` ~35s (five depends_on hops on 5-s
# healthchecks); the whole test ~2-2.5 min. Warm, the script takes ~2-3
# min; fully cold (docker.io installed, no cache of any kind) ~10-11 min.
#
# Environment: GATEHOUSE_CI_CACHE
# (default /var/cache/gatehouse-ci), GATEHOUSE_DOCKER_ROOT (default
# /var/lib/gatehouse-ci/docker), GOTESTFLAGS (extra `go test` flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH=$ROOT/.tools:/usr/local/go/bin:$PATH

COMPOSE_VERSION=v2.28.1
# Redis, nginx with its stream module (edge.conf's ssl_preread) and
# Prometheus, on Debian.
DEBIAN_SUITE=bookworm
DEBIAN_PACKAGES=redis-server,nginx,libnginx-mod-stream,prometheus
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

CACHE=${GATEHOUSE_CI_CACHE:-/var/cache/gatehouse-ci}
DATA_ROOT=${GATEHOUSE_DOCKER_ROOT:-/var/lib/gatehouse-ci/docker}
RUN_DIR=/run/gatehouse-ci
EXEC_ROOT=$RUN_DIR/exec
PIDFILE=$RUN_DIR/dockerd.pid
SOCK=$RUN_DIR/docker.sock
export DOCKER_HOST=unix://$SOCK
# The CLI's own configuration, with the compose plugin: nothing of the
# machine's ~/.docker is read or written.
export DOCKER_CONFIG=$RUN_DIR/config

if [ "$(id -u)" != 0 ]; then
  echo "ci.sh: runs dockerd, so it needs root" >&2
  exit 1
fi

# Timings, printed at the end (and on failure).
TIMES=()
step_start() { STEP=$1; STEP_T0=$(date +%s.%N); echo "== $STEP"; }
step_end() {
  local d
  d=$(awk -v a="$STEP_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  TIMES+=("$(printf '%-44s %7ss' "$STEP${1:+ ($1)}" "$d")")
  echo "== $STEP: ${d}s${1:+ ($1)}"
}
print_times() {
  echo "== docker compose CI timings"
  local l
  for l in "${TIMES[@]}"; do echo "   $l"; done
}

DOCKERD_PID=
stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "ci.sh: dockerd $DOCKERD_PID did not stop in 30s: SIGKILL" >&2
      kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    fi
  fi
  echo "ci.sh: dockerd $DOCKERD_PID stopped"
  DOCKERD_PID=
}
# A process and its children, by PID (the background debootstrap).
kill_tree() {
  local c
  for c in $(pgrep -P "$1"); do kill_tree "$c"; done
  kill "$1" 2>/dev/null
}
cleanup() {
  local rc=$?
  set +e
  if [ -n "${DEBOOTSTRAP_PID:-}" ] && kill -0 "$DEBOOTSTRAP_PID" 2>/dev/null; then
    kill_tree "$DEBOOTSTRAP_PID"
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    # Whatever the test left (it runs `down -v` itself when it gets there).
    if [ -x "$DOCKER_CONFIG/cli-plugins/docker-compose" ]; then
      timeout 120 docker compose -p gatehouse -f docker-compose.yaml -f deployments/compose/ci/override.yaml \
        down -v --remove-orphans --timeout 10 >/dev/null 2>&1
    fi
  fi
  stop_dockerd
  if ((rc != 0)) && [ -f "$RUN_DIR/dockerd.log" ]; then
    echo "== dockerd log (last 40 lines)"
    tail -n 40 "$RUN_DIR/dockerd.log"
  fi
  print_times
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. packages ----------------------------------------------------------
step_start "install docker.io, debootstrap"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  step_end "installed ${need[*]}"
else
  step_end "already installed"
fi
# docker.io's client matches its daemon; another docker on PATH may not.
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker)
docker() { "$DOCKER" "$@"; }

# --- 2. dockerd -----------------------------------------------------------
step_start "start dockerd"
mkdir -p "$RUN_DIR" "$EXEC_ROOT" "$DATA_ROOT" "$DOCKER_CONFIG/cli-plugins" "$CACHE"
# One run at a time on a machine: they share the daemon's paths. (dockerd
# does not inherit the lock, so a daemon left by a killed run cannot hold it.)
exec 9>"$RUN_DIR/lock"
flock -w 600 9 || { echo "ci.sh: another run holds $RUN_DIR/lock"; exit 1; }
# The ports docker-compose.yaml publishes (on 127.0.0.1 here) must be free.
busy=$(ss -H -ltn 'sport = :443 or sport = :9000 or sport = :3000' | awk '{print $4}')
if [ -n "$busy" ]; then
  echo "ci.sh: the compose file publishes 443, 9000 and 3000, but these are taken:" $busy >&2
  exit 1
fi
# A daemon of ours left by a run that was killed outright (the lock says no
# run is alive): stop it by the PID it wrote.
if [ -f "$PIDFILE" ]; then
  old=$(cat "$PIDFILE")
  if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = dockerd ]; then
    echo "ci.sh: stopping dockerd $old left by an earlier run"
    DOCKERD_PID=$old stop_dockerd
  fi
  rm -f "$PIDFILE"
fi
dockerd \
  --data-root "$DATA_ROOT" \
  --exec-root "$EXEC_ROOT" \
  --pidfile "$PIDFILE" \
  --host "unix://$SOCK" \
  --bridge none \
  --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --ip 127.0.0.1 \
  --default-address-pool base=10.214.0.0/16,size=24 \
  --log-level warn \
  >"$RUN_DIR/dockerd.log" 2>&1 9>&- &
DOCKERD_PID=$!
for i in $(seq 120); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { echo "ci.sh: dockerd exited:"; cat "$RUN_DIR/dockerd.log"; exit 1; }
  ((i < 120)) || { echo "ci.sh: dockerd not answering after 60s"; exit 1; }
  sleep 0.5
done
step_end "pid $DOCKERD_PID, $(docker version -f '{{.Server.Version}}'), $(docker info -f '{{.Driver}}')"

# The root file system of Redis and nginx: debootstrap once per package
# list, kept as a tarball in $CACHE. It mostly downloads, so it runs in the
# background while the compose plugin compiles.
DEBIAN_KEY=debian-$(echo "$DEBIAN_SUITE $DEBIAN_PACKAGES minbase" | sha256sum | cut -c1-16)
DEBIAN_TARBALL=$CACHE/$DEBIAN_KEY.tar
make_debian_tarball() {
  local rootfs t0=$SECONDS
  rootfs=$(mktemp -d)
  nice -n 10 debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CACHE/$DEBIAN_KEY.log" 2>&1 || { rm -rf "$rootfs"; return 1; }
  # What an image needs none of: downloaded packages, lists, docs.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" --numeric-owner -cf "$DEBIAN_TARBALL.tmp" . && mv "$DEBIAN_TARBALL.tmp" "$DEBIAN_TARBALL"
  rm -rf "$rootfs"
  echo $((SECONDS - t0)) >"$CACHE/$DEBIAN_KEY.time"
}
DEBOOTSTRAP_PID=
# Root file systems of package lists no longer used.
for f in "$CACHE"/debian-*.tar; do
  if [ -e "$f" ] && [ "$f" != "$DEBIAN_TARBALL" ]; then rm -f "$f" "${f%.tar}.log" "${f%.tar}.time"; fi
done
if [ ! -f "$DEBIAN_TARBALL" ]; then
  make_debian_tarball &
  DEBOOTSTRAP_PID=$!
fi

# --- 3. the compose plugin ------------------------------------------------
step_start "compose plugin $COMPOSE_VERSION"
plugin=.tools/docker-compose-$COMPOSE_VERSION
how="in .tools"
if [ ! -x "$plugin" ]; then
  mkdir -p .tools
  if [ -x "$CACHE/docker-compose-$COMPOSE_VERSION" ]; then
    cp "$CACHE/docker-compose-$COMPOSE_VERSION" "$plugin"
    how="from $CACHE"
  else
    # `go install` refuses compose's module (its go.mod has exclude
    # directives): build it in a writable copy of the module instead.
    src=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || { echo "ci.sh: go mod download of compose $COMPOSE_VERSION failed"; exit 1; }
    tmp=$(mktemp -d)
    cp -r "$src/." "$tmp" && chmod -R u+w "$tmp"
    (cd "$tmp" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
      -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
      -o "$ROOT/$plugin" ./cmd)
    rm -rf "$tmp"
    cp "$plugin" "$CACHE/docker-compose-$COMPOSE_VERSION"
    how="built"
  fi
fi
ln -sf "$ROOT/$plugin" "$DOCKER_CONFIG/cli-plugins/docker-compose"
step_end "$how; $(docker compose version --short)"

# --- 4. images ------------------------------------------------------------
# An image made with `docker import` carries its cache key in its comment,
# so it is imported again only when its content changes.
import_key() { docker image inspect -f '{{.Comment}}' "$1" 2>/dev/null || true; }

# The base of the gatehouse and grafana images: FROM scratch, what
# distroless/static has that they use: CA certificates, /tmp, users.
step_start "image gatehouse-ci/static"
static=$(mktemp -d)
mkdir -p "$static"/{etc/ssl/certs,tmp,home/nonroot}
chmod 1777 "$static/tmp"
cat >"$static/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
grafana:x:472:0:grafana:/usr/share/grafana:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$static/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
chown 65532:65532 "$static/home/nonroot"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$static/etc/ssl/certs/"
key=static-$(tar -C "$static" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c . | sha256sum | cut -c1-16)
if [ "$(import_key gatehouse-ci/static:latest)" != "$key" ]; then
  tar -C "$static" --numeric-owner -c . | docker import -m "$key" - gatehouse-ci/static:latest >/dev/null
  how=imported
else
  how=cached
fi
rm -rf "$static"
step_end "$how"

# Debian with Redis and nginx, imported from the tarball made above.
step_start "image gatehouse-ci/debian"
how=cached
if [ -n "$DEBOOTSTRAP_PID" ]; then
  wait "$DEBOOTSTRAP_PID" || { tail -n 30 "$CACHE/$DEBIAN_KEY.log"; exit 1; }
  how="debootstrap $(cat "$CACHE/$DEBIAN_KEY.time")s, in the background"
fi
if [ "$(import_key gatehouse-ci/debian:latest)" != "$DEBIAN_KEY" ]; then
  docker import -m "$DEBIAN_KEY" "$DEBIAN_TARBALL" gatehouse-ci/debian:latest >/dev/null
  how="$how, imported"
fi
step_end "$how, $(du -h "$DEBIAN_TARBALL" | cut -f1)"

# The binaries the images take from the host's Go build (its build cache
# persists between runs): gatehouse (deployments/Dockerfile's prebuilt
# stage) and the Grafana stand-in.
step_start "go build gatehouse, grafana stand-in"
mkdir -p bin/image/certs bin/image/secrets bin/image/signouts bin/grafana-image
CGO_ENABLED=0 nice -n 10 go build -trimpath -tags vtprotobuf -ldflags "-s -w -X main.version=docker-ci" \
  -o bin/image/gatehouse ./cmd/gatehouse
CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" \
  -o bin/grafana-image/grafana ./deployments/compose/ci/grafana
cp deployments/compose/ci/grafana.Dockerfile bin/grafana-image/Dockerfile
step_end

step_start "images redis, edge, prometheus, grafana"
# Plain `docker build` (no BuildKit needed for these).
DOCKER_BUILDKIT=0 docker build -q -t gatehouse-ci/redis:latest -f deployments/compose/ci/redis.Dockerfile deployments/compose/ci >/dev/null
DOCKER_BUILDKIT=0 docker build -q -t gatehouse-ci/edge:latest -f deployments/compose/ci/edge.Dockerfile deployments/compose/ci >/dev/null
DOCKER_BUILDKIT=0 docker build -q -t gatehouse-ci/prometheus:latest -f deployments/compose/ci/prometheus.Dockerfile deployments/compose/ci >/dev/null
DOCKER_BUILDKIT=0 docker build -q -t gatehouse-ci/grafana:latest bin/grafana-image >/dev/null
step_end

# --- 5. the test ----------------------------------------------------------
# gatehouse:dev itself is built by `docker compose up --build` in the test,
# from deployments/Dockerfile with BuildKit (dockerd's own).
step_start "TestDockerCompose"
export DOCKER_BUILDKIT=1
GATEHOUSE_DOCKER_COMPOSE=1 GATEHOUSE_DOCKER=$DOCKER go test -count=1 -timeout 15m -run '^TestDockerCompose$' -v ${GOTESTFLAGS:-} ./deployments
step_end

# Keep the layer cache, not the images this run's builds replaced.
docker image prune -f >/dev/null

step_start "stop dockerd"
stop_dockerd
if [ -S "$SOCK" ] || pgrep -F "$EXEC_ROOT/containerd/containerd.pid" >/dev/null 2>&1; then
  echo "ci.sh: the daemon left its socket or containerd behind" >&2
  exit 1
fi
step_end
