#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system packages (QGIS 3.22, Xvfb), then a venv that sees Debian's
# QGIS Python bindings, then the pinned Python requirements. Re-running it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-qgis qgis-providers qgis xvfb python3-venv python3-pip)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from /usr/bin/python3 (with system site-packages, for QGIS)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.requirements.sha
want=$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python requirements"
  find_links=()
  [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "${find_links[@]}" \
      -r requirements.txt -c constraints.txt > .venv/pip.log 2>&1; then
    grep -v "is ignored: it is neither" .venv/pip.log; echo "setup: pip install failed"; exit 1
  fi
  echo "$want" > "$stamp"
fi
.venv/bin/python -c "import qgis.core, torch, rasterio, geopandas" \
  || { echo "setup: the venv cannot import qgis/torch/rasterio/geopandas"; exit 1; }
