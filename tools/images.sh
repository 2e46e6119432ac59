#!/usr/bin/env bash
# Build the throwaway "fresh VM" images the tests and the demo start: hardening-systemd:RELEASE.
#   tools/images.sh [debian12] [debian13]
# The base is `docker pull debian:N` where a registry answers, else debootstrap + docker import.
# An image is rebuilt only when tests/images/Dockerfile changes.
set -euo pipefail
cd "$(dirname "$0")/.."

dockerfile=tests/images/Dockerfile
recipe=$(sha256sum "$dockerfile" | cut -c1-16)
releases=("$@")
((${#releases[@]})) || releases=(debian12 debian13)

for release in "${releases[@]}"; do
  case "$release" in
    debian12) codename=bookworm; tag=12 ;;
    debian13) codename=trixie; tag=13 ;;
    *) echo "unknown release $release (debian12, debian13)" >&2; exit 2 ;;
  esac
  image="hardening-systemd:$release"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "hardening.recipe" }}' "$image" 2>/dev/null)" = "$recipe" ]; then
    continue
  fi

  base="hardening-base:$release"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    if timeout 120 docker pull -q "debian:$tag" >/dev/null 2>&1; then
      docker tag "debian:$tag" "$base"
    else
      echo "==> no registry: debootstrapping $codename for $base (a few minutes)"
      if ! command -v debootstrap >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
      fi
      root=$(mktemp -d /var/tmp/hardening-rootfs.XXXXXX)
      trap 'rm -rf "$root"' EXIT
      debootstrap --variant=minbase --include=openssh-server,python3,sudo,iproute2 \
        "$codename" "$root" http://deb.debian.org/debian >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; exit 1; }
      tar -C "$root" -c . | docker import - "$base" >/dev/null
      rm -rf "$root" "$root.log"
      trap - EXIT
    fi
  fi

  echo "==> building $image"
  docker build -q --label "hardening.recipe=$recipe" --build-arg "BASE=$base" -t "$image" tests/images \
    >"/tmp/hardening-build-$release.log" 2>&1 || { cat "/tmp/hardening-build-$release.log" >&2; exit 1; }
done
