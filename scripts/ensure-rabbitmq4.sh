#!/usr/bin/env bash
# ensure-rabbitmq4.sh makes sure the Debian trixie root that holds RabbitMQ
# 4.0.5 exists, for the integration tests run with WARREN_RABBITMQ=4.0
# (integration/broker, version.go). The root is built once with debootstrap
# (about 2 minutes; debootstrap is installed first when missing) and cached;
# it is rebuilt when it is missing or broken. Idempotent, and safe when run
# by several processes at once (a lock serialises them). It needs root and
# apt-get only when it has to build. The tests never mount anything on the
# host: each program they run in the root gets its mounts in a private mount
# namespace, so a root is never removed while something is mounted in it.
set -euo pipefail

readonly root=${WARREN_RABBITMQ4_ROOT:-/var/cache/warren/rabbitmq-trixie}
readonly mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly suite=trixie
readonly stamp=.warren-rabbitmq4-ok
readonly want=4.0.

say() { printf 'ensure-rabbitmq4: %s\n' "$*"; }

# healthy ROOT: the build finished (stamp), the programs the tests run are
# there, the release is 4.0.x, and a program runs in it.
healthy() {
	local r=$1
	[[ -f $r/$stamp ]] || return 1
	local f
	for f in usr/lib/rabbitmq/bin/rabbitmq-server usr/lib/rabbitmq/bin/rabbitmqctl usr/bin/epmd usr/bin/erl; do
		[[ -e $r/$f ]] || return 1
	done
	compgen -G "$r/usr/lib/rabbitmq/lib/rabbitmq_server-$want*" >/dev/null || return 1
	chroot "$r" /bin/true 2>/dev/null
}

# mounted_under DIR lists mount points at or under DIR, deepest first.
mounted_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# remove DIR removes a root, first unmounting what a debootstrap that died
# may have left mounted in it (never through the mounts: rm -rf would
# otherwise descend into /proc or /dev). It refuses if something stays.
remove() {
	local d=$1 m
	[[ -e $d ]] || return 0
	while read -r m; do
		[[ -n $m ]] && umount -l "$m"
	done < <(mounted_under "$d")
	if [[ -n $(mounted_under "$d") ]]; then
		say "something is still mounted under $d; not removing it" >&2
		return 1
	fi
	rm -rf --one-file-system "$d"
}

version_of() {
	local v
	v=$(compgen -G "$1/usr/lib/rabbitmq/lib/rabbitmq_server-*" | head -1)
	printf '%s\n' "${v##*rabbitmq_server-}"
}

if healthy "$root"; then
	say "RabbitMQ $(version_of "$root") in $root is ready"
	exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	say "no usable Debian trixie root at $root, and building one needs root and apt-get (run: sudo $0)" >&2
	exit 1
fi

mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
# Another run may have built it while we waited for the lock.
if healthy "$root"; then
	say "RabbitMQ $(version_of "$root") in $root is ready"
	exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
	say "installing debootstrap"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

if [[ -e $root ]]; then
	say "$root is incomplete or broken; rebuilding it"
fi
tmp=$root.build
remove "$tmp"
trap 'remove "$tmp" || true' EXIT
say "building a Debian $suite root with rabbitmq-server in $root from $mirror (about 2 minutes)"
start=$(date +%s)
if ! debootstrap --variant=minbase --include=rabbitmq-server "$suite" "$tmp" "$mirror" >"$root.log" 2>&1; then
	tail -20 "$root.log" >&2
	say "debootstrap failed; full log in $root.log" >&2
	exit 1
fi
touch "$tmp/$stamp"
if ! healthy "$tmp"; then
	say "debootstrap succeeded but the root in $tmp has no RabbitMQ $want*; log in $root.log" >&2
	exit 1
fi
remove "$root"
mv "$tmp" "$root"
trap - EXIT
say "built RabbitMQ $(version_of "$root") in $root in $(($(date +%s) - start))s"
