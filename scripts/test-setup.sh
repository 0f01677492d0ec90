#!/bin/sh
# `npm run test:setup`: installs the programs the test suite starts itself on loopback —
# chromium (browser tests of the report and of `toxlora serve`) and redis-server (the cluster
# tests) — with Debian's apt-get when they are missing. Does nothing when they are present.
set -eu

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ -z "$missing" ]; then
  echo "test:setup: chromium and redis-server are installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test:setup: missing:$missing — install them with your package manager (no apt-get here)" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "test:setup: missing:$missing — run as root: apt-get install -y$missing" >&2
  exit 1
fi

echo "test:setup: installing$missing with apt-get"
$sudo apt-get update -qq
# shellcheck disable=SC2086 # $missing is a list of package names
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
