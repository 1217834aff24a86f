#!/usr/bin/env bash
# Installs every system package milvus-cdc needs to build, test and run the local test bed.
# Idempotent; run as root (or with sudo available) on Debian 12.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  # C++ libraries
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  librdkafka-dev libsqlite3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  nlohmann-json3-dev libcpp-httplib-dev libgtest-dev libgmock-dev libssl-dev
  libbenchmark-dev libzstd-dev
  # npm for the official .proto files
  nodejs npm
  # test bed
  etcd-server etcd-client kcat xz-utils unzip python3-venv python3-pip maven default-jre-headless
  procps psmisc iproute2 openssl
)

have_all=1
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    have_all=0; break
  fi
done
# node/npm/java/mvn may come from elsewhere on the machine; accept them when present
if [ "$have_all" = 1 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do
  case "$p" in
    nodejs|npm) command -v npm >/dev/null 2>&1 && continue ;;
    maven) command -v mvn >/dev/null 2>&1 && continue ;;
    default-jre-headless) command -v java >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install-deps: done"
