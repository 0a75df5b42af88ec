#!/usr/bin/env bash
# dockerd.sh starts or stops a private Docker engine for make test-docker:
# Debian's docker.io (installed with apt when missing, services not started)
# on its own socket, data root and exec root under DIR, never the default
# /var/run/docker.sock, so other tools on the machine are not affected.
# Published ports bind to 127.0.0.1 only (--ip); the engine does not touch
# iptables (the userland proxy carries published ports).
#
#   dockerd.sh start DIR   prints DOCKER_HOST=unix://DIR/docker.sock once it answers
#   dockerd.sh stop DIR    removes every container, stops the engine, deletes DIR
set -euo pipefail

readonly cmd=${1:?usage: dockerd.sh start|stop DIR} dir=${2:?usage: dockerd.sh start|stop DIR}
readonly sock=$dir/docker.sock pidfile=$dir/dockerd.pid
say() { printf 'dockerd: %s\n' "$*" >&2; }

start() {
	if ! command -v dockerd >/dev/null 2>&1; then
		[[ $(id -u) -eq 0 ]] || { say "dockerd missing; run as root to install docker.io"; exit 1; }
		say "installing docker.io"
		apt-get update -qq
		# policy-rc.d keeps the package from starting its own engine on the default socket.
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
	fi
	mkdir -p "$dir"
	dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
		--iptables=false --ip6tables=false --ip=127.0.0.1 \
		--exec-opt native.cgroupdriver=cgroupfs --storage-driver="${WARREN_DOCKER_STORAGE:-overlay2}" \
		>"$dir/dockerd.log" 2>&1 &
	local i
	for ((i = 0; i < 60; i++)); do
		if DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1; then
			echo "DOCKER_HOST=unix://$sock"
			return 0
		fi
		kill -0 $! 2>/dev/null || break
		sleep 0.5
	done
	tail -20 "$dir/dockerd.log" >&2
	say "dockerd did not answer on $sock"
	exit 1
}

stop() {
	if [[ -S $sock ]]; then
		local ids
		ids=$(DOCKER_HOST=unix://$sock docker ps -aq 2>/dev/null || true)
		[[ -z $ids ]] || DOCKER_HOST=unix://$sock docker rm -f $ids >/dev/null 2>&1 || true
	fi
	if [[ -f $pidfile ]]; then
		local pid
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		local i
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	# The engine leaves its bridge behind; remove it unless another engine runs.
	if ! pgrep -x dockerd >/dev/null 2>&1 && ip link show docker0 >/dev/null 2>&1; then
		ip link delete docker0 || true
	fi
	# Mounts the engine left (overlay2 layers, netns) go before the files.
	awk -v d="$dir" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
	rm -rf --one-file-system "$dir"
}

case $cmd in
start) start ;;
stop) stop ;;
*) say "unknown command $cmd"; exit 2 ;;
esac
