#!/usr/bin/env bash
# Test support for tests/test_docker.py (CI runs it from .ci/run): a Docker
# daemon on this machine and a local base image, made from Debian packages
# because no image registry is reachable. Idempotent; about 95 s the first
# time, 1 s after that. Needs root and Debian's apt.
#
#   1. apt-get install docker.io debootstrap iptables (where missing)
#   2. start dockerd in the background (unless `docker info` already works)
#   3. build the image $EAGLE3_PATCH_DOCKER_BASE (default
#      eagle3-patch-test-base:bookworm) with debootstrap --variant=minbase:
#      python3, venv and pip, this host's apt sources, CA certificates and
#      package index, so that apt and pip inside a build reach what they reach here.
set -euo pipefail

BASE=${EAGLE3_PATCH_DOCKER_BASE:-eagle3-patch-test-base:bookworm}
STATE=${EAGLE3_PATCH_DOCKER_STATE:-$HOME/.cache/eagle3-patch/docker}
mkdir -p "$STATE"
started=$(date +%s)
say() { echo "docker_daemon: $*"; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v iptables >/dev/null || missing+=(iptables)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    # apt's sandbox user must be able to write its temp folder.
    apt_tmp=$(mktemp -d) && chmod 1777 "$apt_tmp"
    TMPDIR=$apt_tmp DEBIAN_FRONTEND=noninteractive apt-get update -qq
    TMPDIR=$apt_tmp DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$STATE/apt.log" 2>&1 || { tail -20 "$STATE/apt.log"; exit 1; }
    rm -rf "$apt_tmp"
fi

live_dockerd() {  # the pid file names a dockerd that is running (not a zombie, not a reused pid)
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && [ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ]
}

if ! timeout 10 docker info >/dev/null 2>&1; then
    if live_dockerd; then  # starting up, or stuck: give it a minute, then replace it
        for _ in $(seq 60); do timeout 10 docker info >/dev/null 2>&1 && break; sleep 1; done
        timeout 10 docker info >/dev/null 2>&1 || kill -9 "$(cat /var/run/docker.pid)" 2>/dev/null || true
        sleep 1
    fi
fi
if ! timeout 10 docker info >/dev/null 2>&1; then
    # A pid file left by a killed daemon makes dockerd refuse to start, and the
    # containerd that daemon started would keep the socket the new one needs.
    if ! live_dockerd; then
        rm -f /var/run/docker.pid
        pkill -9 -f /var/run/docker/containerd/containerd.toml 2>/dev/null && sleep 1 || true
        # Its pid file too: a killed process nobody reaps still answers kill -0, and dockerd would wait on it.
        rm -f /var/run/docker/containerd/containerd.pid
    fi
    say "starting dockerd (log: $STATE/dockerd.log)"
    setsid dockerd --pidfile /var/run/docker.pid >>"$STATE/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 120); do
        timeout 10 docker info >/dev/null 2>&1 && break
        kill -0 $! 2>/dev/null || { tail -20 "$STATE/dockerd.log"; exit 1; }
        sleep 0.5
    done
    timeout 10 docker info >/dev/null 2>&1 || { say "dockerd did not answer in 60 s"; exit 1; }
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    sources=/etc/apt/sources.list.d/debian.sources
    mirror=$(awk '/^URIs:/ {print $2; exit}' "$sources" 2>/dev/null || true)
    rootfs=$STATE/rootfs
    rm -rf "$rootfs"
    say "debootstrap bookworm from ${mirror:-http://deb.debian.org/debian} (log: $STATE/debootstrap.log)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" >"$STATE/debootstrap.log" 2>&1 \
        || { tail -20 "$STATE/debootstrap.log"; exit 1; }
    # This host's apt sources and CA bundle (its TLS may be inspected by a local CA).
    if [ -f "$sources" ]; then rm -f "$rootfs/etc/apt/sources.list"; cp "$sources" "$rootfs/etc/apt/sources.list.d/"; fi
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    # pip: the host's index (a remote index-url if it has one), none of its local file:// folders.
    index=${PIP_INDEX_URL:-$(pip config get global.index-url 2>/dev/null || true)}
    {
        echo "[global]"
        echo "cert = /etc/ssl/certs/ca-certificates.crt"
        echo "timeout = 180"
        echo "disable-pip-version-check = true"
        case "$index" in http://* | https://*) echo "index-url = $index" ;; esac
    } >"$rootfs/etc/pip.conf"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
    rm -rf "$rootfs"
fi
say "ready in $(($(date +%s) - started)) s: $(docker version -f 'server {{.Server.Version}}'), base image $BASE"
