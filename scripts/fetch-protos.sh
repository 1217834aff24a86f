#!/usr/bin/env bash
# Fetches the official Milvus .proto files (milvus-proto at 457c187 = tags v2.5.8..v2.5.10) from
# the pinned npm package @zilliz/milvus2-sdk-node, checks the tarball against a pinned sha512
# integrity, and extracts package/dist/proto/proto/*.proto (not the bundled google/protobuf copy)
# into a version-keyed cache outside the source tree:
#
#   ${MILVUS_CDC_CACHE:-$HOME/.cache/milvus-cdc}/milvus-proto-sdk-node-<version>/
#
# Prints that directory (and nothing else) on stdout; progress and errors go to stderr.
# Idempotent: when the cache entry is complete, no network is used. Safe to run concurrently
# (each run extracts into a private temp dir and renames it into place).
set -euo pipefail

PKG_NAME="@zilliz/milvus2-sdk-node"
PKG_VERSION="2.5.8"
PKG_INTEGRITY="sha512-4/KyvU04vuvYsjZTzZyddWkaGfP/GyJ++HDtxo7lAxcCn7SgUXtmmjX+wk3oEeuUm7n3tL8thxjhC1B/iXUUiA=="
PROTO_PREFIX="package/dist/proto/proto"
EXPECTED_FILES=(common.proto schema.proto msg.proto milvus.proto feder.proto rg.proto)

log() { echo "fetch-protos: $*" >&2; }
die() { echo "fetch-protos: ERROR: $*" >&2; exit 1; }

cache_root="${MILVUS_CDC_CACHE:-${HOME:-}/.cache/milvus-cdc}"
[ -n "$cache_root" ] && [ "$cache_root" != "/.cache/milvus-cdc" ] ||
  die "cannot pick a cache directory: set MILVUS_CDC_CACHE or HOME"
dest="$cache_root/milvus-proto-sdk-node-$PKG_VERSION"
stamp="$dest/.complete"

is_complete() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PKG_INTEGRITY" ] || return 1
  local f
  for f in "${EXPECTED_FILES[@]}"; do [ -s "$dest/$f" ] || return 1; done
}

if is_complete; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm not found (scripts/install-deps.sh installs it)"
command -v tar >/dev/null 2>&1 || die "tar not found"

sha512_b64() {
  if command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha512 -binary "$1" | base64 | tr -d '\n'
  else
    node -e 'const c=require("crypto"),f=require("fs");
             process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
  fi
}

mkdir -p "$cache_root" || die "cannot create cache directory $cache_root"
work="$(mktemp -d "$cache_root/.fetch.XXXXXX")" || die "cannot create a temp dir under $cache_root"
trap 'rm -rf "$work"' EXIT

log "downloading $PKG_NAME@$PKG_VERSION with npm pack"
# npm pack resolves the tarball through npm's configured registry; its stdout is the file name.
if ! (cd "$work" && npm pack "$PKG_NAME@$PKG_VERSION" --ignore-scripts --silent >"$work/pack.out" 2>"$work/pack.err"); then
  cat "$work/pack.err" >&2
  die "npm pack $PKG_NAME@$PKG_VERSION failed (is the npm registry reachable?)"
fi
tarball="$work/$(tail -n 1 "$work/pack.out")"
[ -f "$tarball" ] || die "npm pack did not produce a tarball (output: $(cat "$work/pack.out"))"

actual="sha512-$(sha512_b64 "$tarball")"
if [ "$actual" != "$PKG_INTEGRITY" ]; then
  die "integrity mismatch for $PKG_NAME@$PKG_VERSION
  expected: $PKG_INTEGRITY
  actual:   $actual
refusing to use this tarball"
fi
log "integrity ok ($PKG_INTEGRITY)"

# Extract only the top-level .proto files of the proto dir; the bundled google/protobuf copy
# is left out so protoc uses the system protobuf's own well-known types.
mkdir -p "$work/x"
tar -xzf "$tarball" -C "$work/x" --no-same-owner --wildcards --no-wildcards-match-slash \
  "$PROTO_PREFIX/*.proto" || die "cannot extract $PROTO_PREFIX/*.proto from $tarball"
staged="$work/out"
mkdir -p "$staged"
mv "$work/x/$PROTO_PREFIX"/*.proto "$staged/"
for f in "${EXPECTED_FILES[@]}"; do
  [ -s "$staged/$f" ] || die "$f missing from $PROTO_PREFIX in the tarball"
done
printf '%s\n' "$PKG_INTEGRITY" >"$staged/.complete"

# Publish atomically. A stale or partial entry is replaced; if another run won the race, keep it.
if [ -e "$dest" ] && ! is_complete; then
  rm -rf "$dest"
fi
if ! mv -T "$staged" "$dest" 2>/dev/null; then
  is_complete || die "cannot move the protos into $dest"
fi
is_complete || die "cache entry $dest is incomplete after extraction"
log "protos cached in $dest"
echo "$dest"
