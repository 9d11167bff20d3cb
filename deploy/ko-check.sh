#!/usr/bin/env bash
# Builds every function image with `ko resolve` without reaching any outside registry: a local
# registry (crane's) serves both ko's base image, made here from a single /etc/passwd layer,
# and the images ko pushes. Then checks that every image reference in the resolved YAML is a
# digest in that registry holding its binary at /ko-app/<name>, and runs one of them.
#
#   deploy/ko-check.sh            (make ko-check)
#
# Environment: KO_CHECK_PORT (default 5055) for the local registry.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools="$root/bin/tools"
port=${KO_CHECK_PORT:-5055}
reg="127.0.0.1:$port"
work=$(mktemp -d)

mkdir -p "$tools"
GOBIN="$tools" go install github.com/google/ko@v0.18.1
GOBIN="$tools" go install github.com/google/go-containerregistry/cmd/crane@v0.20.3

"$tools/crane" registry serve --address "$reg" >"$work/registry.log" 2>&1 &
registry=$!
cleanup() { kill "$registry" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 50); do
	curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done

# A base image with nothing but a non-root user: ko's binaries are static.
mkdir -p "$work/base/etc"
printf 'nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n' >"$work/base/etc/passwd"
tar -C "$work/base" -cf "$work/base.tar" etc
"$tools/crane" append --insecure -f "$work/base.tar" -t "$reg/base:latest" >/dev/null
"$tools/crane" mutate --insecure --set-platform linux/amd64 --user 65532 -t "$reg/base:latest" "$reg/base:latest" >/dev/null

go run ./deploy/cmd/manifests -out "$work/out" -example-secrets >/dev/null
KO_DEFAULTBASEIMAGE="$reg/base:latest" KO_DOCKER_REPO="$reg/trustplane" \
	"$tools/ko" resolve --insecure-registry -f "$work/out/dev.yaml" >"$work/dev.resolved.yaml" 2>"$work/ko.log" ||
	{ cat "$work/ko.log" >&2; exit 1; }

if grep -q 'ko://' "$work/dev.resolved.yaml"; then
	echo "ko-check: unresolved ko:// references remain" >&2
	exit 1
fi
n=0
for img in $(grep -o "$reg/trustplane/[^[:space:]]*@sha256:[0-9a-f]*" "$work/dev.resolved.yaml" | sort -u); do
	name=$(basename "${img%%@*}")
	name=${name%-*} # ko appends a hash of the import path
	dir="$work/img-$name"
	mkdir -p "$dir"
	"$tools/crane" export --insecure "$img" - | tar -x -C "$dir" 2>/dev/null
	[ -x "$dir/ko-app/$name" ] || { echo "ko-check: $img has no /ko-app/$name" >&2; exit 1; }
	echo "ok  $name  $img"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "ko-check: no images built" >&2; exit 1; }

# The auth image's binary starts and refuses to run without its configuration.
if out=$(env -i "$work/img-auth/ko-app/auth" 2>&1); then
	echo "ko-check: auth started without configuration" >&2
	exit 1
fi
case "$out" in
*AUTH_KEYS_FILE*) echo "ok  auth binary runs: $out" ;;
*) echo "ko-check: unexpected auth output: $out" >&2; exit 1 ;;
esac
