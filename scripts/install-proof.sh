#!/usr/bin/env bash
# install-proof.sh proves that a user can `go install` warren's CLI at a
# version, with nothing from this checkout but what a release publishes:
#
#  1. It clones the committed HEAD and tags it as a release would: VERSION
#     for the root module and DIR/VERSION for every other module in go.work.
#  2. It publishes those tags to a local module proxy directory: go mod
#     download through git (GOPRIVATE, with git's url.insteadOf pointing
#     github.com/warrenmq/warren at the clone), so each zip is exactly what
#     the Go module proxy would serve for the tag (nested modules left out).
#  3. From a new, empty module cache, with GOWORK=off, it runs
#       go install github.com/warrenmq/warren/cmd/warren@VERSION
#     with GOPROXY=file://<that directory>,file://<the module cache's download
#     directory> (third-party modules from this machine's cache: offline), and
#     runs the binary, checking that it links no testcontainers-go or Docker
#     client.
#
# warren's modules are not in the checksum database until published, so
# GONOSUMDB covers github.com/warrenmq; and this machine cannot reach the
# checksum database at all, so GOSUMDB=off: go install of a module@version
# verifies its dependencies there, not against the module's own go.sum (a
# user's go install does so as usual). The third-party modules come from
# this machine's module cache, which verified them when it downloaded them.
# Nothing here touches the network.
#
# `install-proof.sh tidy` stops after step 2 and runs go mod tidy in every
# module of the checkout against that proxy (go mod tidy ignores go.work, and
# the sibling versions the go.mod files require exist only once tagged); it
# then drops warren's own lines from each go.sum: they hash this commit's
# zips, not the release's (make tidy).
#
#   usage: install-proof.sh [tidy] [VERSION]   (default v0.1.0: what go.mod files require)
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=false
if [[ ${1:-} == tidy ]]; then
	tidy=true
	shift
fi
readonly version=${1:-v0.1.0}
readonly checkout=$PWD
readonly module=github.com/warrenmq/warren
say() { printf 'install-proof: %s\n' "$*"; }

tmp=$(mktemp -d /tmp/warren-install-proof.XXXXXX)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
hostcache=$(go env GOMODCACHE)/cache/download
# Every module of the workspace, as directories relative to the root.
mapfile -t dirs < <(go list -m -f '{{.Dir}}' | sed "s|^$PWD/\\{0,1\\}||")

# 1. The release: a clone of HEAD with one tag per module.
git clone -q --no-local . "$tmp/src"
for d in "${dirs[@]}"; do
	git -C "$tmp/src" tag "${d:+$d/}$version"
done
say "tagged $(git -C "$tmp/src" rev-parse --short HEAD) as: $(git -C "$tmp/src" tag | tr '\n' ' ')"

# 2. The proxy directory, filled through git from the clone.
cat >"$tmp/gitconfig" <<CFG
[url "file://$tmp/src"]
	insteadOf = https://$module
[safe]
	directory = *
CFG
mods=()
for d in "${dirs[@]}"; do mods+=("$module${d:+/$d}@$version"); done
mkdir -p "$tmp/empty" && cd "$tmp/empty"
GIT_CONFIG_GLOBAL=$tmp/gitconfig GOMODCACHE=$tmp/publish GOPRIVATE=$module GOWORK=off \
	GOPROXY=off GOFLAGS=-modcacherw go mod download "${mods[@]}"
say "local proxy: $(cd "$tmp/publish/cache/download" && find . -name '*.zip' | sort | tr '\n' ' ')"

if $tidy; then
	for d in "${dirs[@]}"; do
		(cd "$checkout/${d:-.}" && env GOWORK=off GOFLAGS=-mod=mod GONOSUMDB="$module" GOSUMDB=off \
			GOPROXY="file://$tmp/publish/cache/download,file://$hostcache,$(go env GOPROXY)" go mod tidy)
		sed -i "\|^$module[ /]|d" "$checkout/${d:-.}/go.sum"
		say "tidied ${d:-.}"
	done
	exit 0
fi

# 3. The user's install, from an empty module cache.
start=$(date +%s)
env GOMODCACHE="$tmp/modcache" GOPATH="$tmp/gopath" GOBIN="$tmp/bin" GOWORK=off GOFLAGS=-modcacherw \
	GOPROXY="file://$tmp/publish/cache/download,file://$hostcache" GONOSUMDB="$module" GOSUMDB=off \
	go install "$module/cmd/warren@$version" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	say "FAIL: go install $module/cmd/warren@$version" >&2
	exit 1
}
say "go install $module/cmd/warren@$version: ok in $(($(date +%s) - start))s"
say "the installed binary runs: $("$tmp/bin/warren" help 2>&1 | sed -n 2p | sed "s/^ *//")"
deps=$(go version -m "$tmp/bin/warren")
printf '%s\n' "$deps" | grep -E "^\s+(path|mod|dep)\s+$module" | sed 's/^/    /'
if printf '%s\n' "$deps" | grep -qiE 'testcontainers|docker/docker'; then
	say "FAIL: the installed CLI links testcontainers-go or the Docker client" >&2
	exit 1
fi
say "the installed CLI links no testcontainers-go and no Docker client ($(printf '%s\n' "$deps" | grep -c '^\s*dep') modules)"
