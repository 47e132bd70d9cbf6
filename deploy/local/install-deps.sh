#!/usr/bin/env bash
# Install what closeloop's local stack needs, if missing: Debian packages
# (SMTP server, TLS headers for librdkafka, PostgreSQL binaries when no
# server runs). With the argument `kafka`, also the tansu Kafka broker (for
# `make run-kafka` and the test suite; single-node `make run` needs none).
# Usage: install-deps.sh [kafka]
set -euo pipefail

need_apt=()
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need_apt+=(python3-aiosmtpd)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
# The web app's browser tests (make test): Debian's headless Chromium and
# its WebDriver, and axe-core (npm) for the accessibility check.
if [ "${1:-}" = kafka ]; then
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  [ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
  command -v npm >/dev/null 2>&1 || need_apt+=(npm)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = kafka ] && ! command -v tansu >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
  echo "installing the tansu Kafka broker (one time, about 10 minutes)"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql
fi

if [ "${1:-}" = kafka ] && [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  echo "installing axe-core for the accessibility checks (npm, tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
