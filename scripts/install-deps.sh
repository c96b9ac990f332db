#!/usr/bin/env bash
# Installs the Debian packages the build and the tests use (as root, or through sudo).
# `install-deps.sh demo` installs only what the demo needs: a C compiler, pkcs11-tool and OpenSSL.
set -euo pipefail
packages=(build-essential pkg-config opensc openssl)
if [ "${1:-all}" != demo ]; then
  packages+=(libengine-pkcs11-openssl openssh-client libp11-kit-dev p11-kit sqlite3
    file osslsigncode gcab wixl default-jdk-headless gnutls-bin p11-kit-modules openssh-server python3-pykcs11 socat iproute2 valgrind postgresql
    python3-cryptography python3-venv)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # openssh-server and postgresql are installed for their binaries only (the tests run their own sshd
  # and PostgreSQL on 127.0.0.1): without systemd, their postinst would start system services unless
  # policy-rc.d forbids it.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -z "$policy" ] || $sudo rm -f "$policy"
fi
