#!/usr/bin/env bash
# Make a project-local QGIS profile with this repository linked in as the `changen` plugin, enabled.
# Usage: qgis_profile.sh PROFILES_DIR PLUGIN_SOURCE_DIR
set -euo pipefail
profiles=$1; source_dir=$2
default=$profiles/profiles/default
mkdir -p "$default/python/plugins" "$default/QGIS"
ln -sfn "$source_dir" "$default/python/plugins/changen"
ini=$default/QGIS/QGIS3.ini
if ! grep -q '^changen=true' "$ini" 2>/dev/null; then
  cat >> "$ini" <<'INI'
[PythonPlugins]
changen=true

[qgis]
checkVersion=false
askToSaveMemoryLayers=false
showTips=false
INI
fi
