#!/usr/bin/env bash
# ensure-rabbitmq.sh makes sure the integration tests (integration/broker.Find)
# will find a RabbitMQ broker: AMQP_URL, a Docker engine, or a local
# rabbitmq-server from which they start a private node of their own.
# If none is there and we are root on a Debian-like system, it installs
# Debian's rabbitmq-server package without letting the package start the
# system node. It never stops a node it did not start. `make test` and
# `make demo` run it first.
set -euo pipefail

readonly server_paths=(/usr/lib/rabbitmq/bin/rabbitmq-server /usr/sbin/rabbitmq-server)
readonly policy=/usr/sbin/policy-rc.d

say() { printf 'ensure-rabbitmq: %s\n' "$*"; }

# run_bounded SECONDS CMD... runs CMD, killing it after SECONDS.
run_bounded() {
	local secs=$1
	shift
	if command -v timeout >/dev/null 2>&1; then
		timeout "$secs" "$@"
		return
	fi
	"$@" &
	local pid=$!
	(sleep "$secs" && kill "$pid" 2>/dev/null) &
	local killer=$!
	local rc=0
	wait "$pid" || rc=$?
	kill "$killer" 2>/dev/null || true
	return "$rc"
}

server_path() {
	local p
	if p=$(command -v rabbitmq-server 2>/dev/null); then
		printf '%s\n' "$p"
		return 0
	fi
	for p in "${server_paths[@]}"; do
		if [[ -x $p ]]; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

docker_answers() {
	command -v docker >/dev/null 2>&1 && run_bounded 5 docker info >/dev/null 2>&1
}

# rabbit_nodes lists the pids of running RabbitMQ nodes (beam.smp with rabbit
# boot arguments), one per line.
rabbit_nodes() {
	pgrep -f 'beam.smp.*-s rabbit boot' 2>/dev/null | sort || true
}

if [[ -n ${AMQP_URL:-} ]]; then
	say "AMQP_URL is set; nothing to do"
	exit 0
fi
if docker_answers; then
	say "a Docker engine answers; the tests will run RabbitMQ in a container"
	exit 0
fi
if path=$(server_path); then
	say "rabbitmq-server found at $path; the tests will start a private node"
	exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	say "no broker: AMQP_URL is not set, no Docker engine answers, and rabbitmq-server is not installed." >&2
	say "install RabbitMQ (Debian/Ubuntu: sudo apt-get install rabbitmq-server; macOS: brew install rabbitmq)," >&2
	say "or set AMQP_URL=amqp://user:pass@host:5672/, or start a Docker engine." >&2
	exit 1
fi

say "no broker found; installing Debian's rabbitmq-server"
nodes_before=$(rabbit_nodes)

# Keep the package from starting the system node: the tests start a private
# node and the system one would only hold port 5672. A policy-rc.d that is
# already there (as in Docker images) is left alone.
own_policy=false
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\n# Temporary, from warren scripts/ensure-rabbitmq.sh.\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	own_policy=true
	trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null

if $own_policy; then
	rm -f "$policy"
	trap - EXIT
fi

if ! path=$(server_path); then
	say "apt-get install rabbitmq-server succeeded but rabbitmq-server is still not found" >&2
	exit 1
fi

new_nodes=$(comm -13 <(printf '%s\n' "$nodes_before") <(rabbit_nodes) | tr '\n' ' ')
if [[ -n ${new_nodes// /} ]]; then
	# Not ours to stop: the package's service manager started it.
	say "installed rabbitmq-server at $path; note: a system RabbitMQ node started during the install (pid ${new_nodes% }) and was left running"
else
	say "installed rabbitmq-server at $path; no system node left running; the tests will start a private node"
fi
