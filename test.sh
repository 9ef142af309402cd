#!/usr/bin/env bash
# Runs Straja's whole test suite on a fresh Debian machine: checks go.mod is tidy, installs
# what the tests need (ffmpeg, chromium, certutil, gcc for the race detector, MinIO) when missing,
# starts MinIO on a free loopback port, runs `go test -race ./...` against it and stops it.
# Extra arguments go to `go test` (`./test.sh -short` skips the slow tests).
set -euo pipefail
cd "$(dirname "$0")"

# First, as it is the quickest check: the module files must be what `go mod tidy` makes.
if ! go mod tidy -diff; then
  echo "test.sh: go.mod/go.sum are not tidy (diff above): run 'go mod tidy' and commit the result" >&2
  exit 1
fi

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
GOBIN_DIR=$(go env GOBIN); [ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v chromium >/dev/null || need_apt+=(chromium)
# certutil imports the certificate `straja cert` writes into a test browser's trust store.
command -v certutil >/dev/null || need_apt+=(libnss3-tools)
# The race detector needs cgo, hence a C compiler, which a minimal Debian lacks.
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} from Debian" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$GOBIN_DIR/minio" ]; then
  echo "test.sh: building MinIO $MINIO_VERSION (first time only, several minutes)" >&2
  (cd / && GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MINIO_DIR=$(mktemp -d)
PORT=$(free_port); CPORT=$(free_port)
export MINIO_ROOT_USER=straja-test MINIO_ROOT_PASSWORD="straja-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
minio server "$MINIO_DIR/data" --quiet --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CPORT" \
  >"$MINIO_DIR/minio.log" 2>&1 &
MINIO_PID=$!
cleanup() { kill "$MINIO_PID" 2>/dev/null || true; wait "$MINIO_PID" 2>/dev/null || true; rm -rf "$MINIO_DIR"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/minio/health/ready" >/dev/null || { cat "$MINIO_DIR/minio.log"; exit 1; }

export STRAJA_TEST_S3_ENDPOINT="127.0.0.1:$PORT"
export STRAJA_TEST_S3_ACCESS_KEY="$MINIO_ROOT_USER" STRAJA_TEST_S3_SECRET_KEY="$MINIO_ROOT_PASSWORD"
export STRAJA_TEST_REQUIRE_S3=1 STRAJA_TEST_REQUIRE_TOOLS=1
export STRAJA_TEST_ARTIFACTS="${STRAJA_TEST_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$STRAJA_TEST_ARTIFACTS"

go vet ./...
CGO_ENABLED=1 go test -race -count=1 -timeout 30m "$@" ./...
