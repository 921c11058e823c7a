#!/usr/bin/env bash
# Installs the real servers some tests drive: redis-server, PostgreSQL, Debian's Chromium,
# and Node.js with npm for the independent oidc-provider server (tests/independent); with
# --bench, the wrk load generator and valgrind too. Idempotent: installs only what is missing.
# (oidc-provider 9 needs Node.js 20+: machines that come with Node.js keep theirs.)
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# PostgreSQL's server binaries (the store tests run initdb and postgres themselves).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: need root to apt-get install ${need[*]}" >&2
  exit 1
fi
echo "install-system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-liberation >/dev/null
