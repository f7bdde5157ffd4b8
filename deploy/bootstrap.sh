#!/usr/bin/env bash
# Install what SafeGrid needs on a fresh Debian/Ubuntu machine, only what is missing:
# Debian packages (redis-server; with --dev the validators of deploy/: prometheus for
# promtool, nginx-light for `nginx -t`, docker-compose for `docker-compose config`, systemd
# for `systemd-analyze verify`; and chromium with its chromedriver, for the console's
# browser tests; Kannel with --sms)
# and the Python packages into .venv.
# Usage: deploy/bootstrap.sh [--dev] [--sms]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="embedded"
packages=(redis-server)
for arg in "$@"; do
  case "$arg" in
    --dev) extras="dev"; packages+=(prometheus nginx-light docker-compose systemd
                                    chromium chromium-driver fonts-wqy-zenhei) ;;  # validators; browser tests (a CJK font for their screenshots)
    --sms) packages+=(kannel kannel-extras) ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The packages start system-wide daemons; SafeGrid starts its own on its own ports.
  for svc in redis-server kannel prometheus nginx; do
    $sudo_cmd service "$svc" stop >/dev/null 2>&1 || true
  done
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing Python packages (.[$extras]) into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -U pip
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
