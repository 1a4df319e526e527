#!/usr/bin/env bash
# The browser the console tests drive: Debian's chromium at /usr/bin/chromium. Installs it (as
# root, from Debian's archive) only when it is missing; Playwright never downloads a browser.
# Idempotent: run by scripts/test.sh and by tests/test_console_browser.py's session fixture.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "fleetlake: /usr/bin/chromium is missing; install Debian's chromium (as root: apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
