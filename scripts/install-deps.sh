#!/usr/bin/env bash
# Installs the Debian packages corinfomax needs (oneDNN for the engine, the
# Fashion-MNIST dataset for the demo), with sudo when not root. Idempotent:
# packages already present are left alone.
set -euo pipefail
pkgs=(libdnnl-dev dataset-fashion-mnist gcc pkg-config)
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
  echo "Go is missing: install Go 1.26 from https://go.dev/dl/ (Debian 12 golang is too old; Go >= 1.21 fetches 1.26 by itself)" >&2
  exit 1
fi
