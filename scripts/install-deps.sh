#!/usr/bin/env bash
# Installs the Debian packages corinfomax needs (oneDNN for the engine, Open
# MPI for data-parallel training, the Fashion-MNIST dataset for the demo),
# with sudo when not root. Idempotent: packages already present are left
# alone.
set -euo pipefail
# The Go in /usr/local/go (go.dev/dl) wins over an older one on PATH, as in
# the Makefile.
export PATH="/usr/local/go/bin:$PATH"
pkgs=(libdnnl-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist gcc pkg-config)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "Go is missing: install Go 1.26.8 (the version go.mod names) from https://go.dev/dl/ into /usr/local/go (Debian 12 golang is too old; a Go >= 1.21 fetches 1.26.8 by itself through the module proxy)" >&2
  exit 1
fi
