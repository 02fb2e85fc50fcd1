#!/usr/bin/env bash
# Installs everything Porter needs to build, run and test, from Debian 12 packages only.
# Idempotent; run as root (or through sudo). Used by the README commands and by .ci/run.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

build_deps=(
  build-essential cmake pkg-config ninja-build
  libuv1-dev libc-ares-dev libssl-dev libopendkim-dev librocksdb-dev
  catch2 libtomlplusplus-dev libcrypt-dev libpsl-dev libopendmarc-dev nlohmann-json3-dev
  libcurl4-openssl-dev
)
test_deps=(
  swaks libnet-ssleay-perl curl openssl python3 python3-yaml python3-dkim python3-dnslib python3-aiosmtpd python3-spf
  dnsmasq-base opendkim-tools publicsuffix iproute2 getmail6 isync python3-prometheus-client
  systemd
)

# Postfix supplies smtp-source/smtp-sink for tests and benchmarks; keep it unconfigured.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections

missing=()
for p in "${build_deps[@]}" "${test_deps[@]}" postfix; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
