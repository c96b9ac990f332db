#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo use (as root, or through sudo).
set -euo pipefail
packages=(build-essential pkg-config opensc libengine-pkcs11-openssl openssl openssh-client libp11-kit-dev p11-kit sqlite3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
