#!/usr/bin/env bash
# Debian's headless Chromium and its WebDriver, for the tests that look at pages as a person does.
# Installs both when missing (as root, through apt); prints nothing when they are already there.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "chromium/chromedriver missing: apt-get install chromium chromium-driver" >&2; exit 1; }
echo "[browser] installing Debian's chromium and chromium-driver" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
