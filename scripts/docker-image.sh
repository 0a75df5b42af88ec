#!/usr/bin/env bash
# docker-image.sh builds the RabbitMQ 4.0.5 management image the Docker path
# of the tests runs (WARREN_DOCKER_IMAGE), without a registry: the Debian
# trixie root of ensure-rabbitmq4.sh goes in by `docker import`, and
# scripts/docker/Dockerfile makes it behave like the official
# rabbitmq:*-management image for testcontainers-go's modules/rabbitmq.
# It talks to the engine in DOCKER_HOST (scripts/dockerd.sh start prints one)
# and skips the build when the image is there and newer than the root.
#
#   usage: docker-image.sh [IMAGE]   (default warren/rabbitmq:4.0.5-management)
set -euo pipefail
cd "$(dirname "$0")"

readonly image=${1:-warren/rabbitmq:4.0.5-management}
readonly base=warren/rabbitmq-trixie-root:4.0.5
readonly root=${WARREN_RABBITMQ4_ROOT:-/var/cache/warren/rabbitmq-trixie}
# The legacy builder: no buildx plugin is needed, and FROM a local image works.
export DOCKER_BUILDKIT=0

say() { printf 'docker-image: %s\n' "$*"; }

bash ./ensure-rabbitmq4.sh >/dev/null
stamp=$root/.warren-rabbitmq4-ok
want=$(stat -c %Y "$stamp")
have=$(docker image inspect -f '{{index .Config.Labels "warren.root-stamp"}}' "$image" 2>/dev/null || true)
if [[ $have == "$want" ]]; then
	say "$image is up to date with $root"
	exit 0
fi

start=$(date +%s)
# What a node that ran in the root on the host left behind stays out.
tar --numeric-owner --one-file-system -C "$root" \
	--exclude=./proc/* --exclude=./sys/* --exclude=./dev/* --exclude=./tmp/* \
	--exclude=./var/lib/rabbitmq/mnesia/* --exclude=./erl_crash.dump \
	-cf - . | docker import - "$base" >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! docker build --build-arg "BASE=$base" --label "warren.root-stamp=$want" -t "$image" docker >"$log" 2>&1; then
	cat "$log" >&2
	say "docker build failed" >&2
	exit 1
fi
say "built $image from $root in $(($(date +%s) - start))s"
