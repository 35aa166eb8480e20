#!/bin/sh
# The one install of synthfarm for a container image or a render host: the shared libraries the bpy module
# loads (Debian's packages; skipped when present, or when not root), then the package with Blender.
#   deploy/install.sh [SOURCE [EXTRAS [PIP OPTIONS...]]]   SOURCE: the synthfarm source folder (default: this
#   script's parent); EXTRAS: pip extras (default: blender); e.g. --no-index for an offline install.
# The Containerfile runs it; so does a test (tests/e2e/test_deploy.py), so both install the same way.
# $PYTHON picks the interpreter (default: python3).
set -eu
src=${1:-$(dirname "$0")/..}
extras=${2:-blender}
[ $# -gt 2 ] && shift 2 || set --
python=${PYTHON:-python3}

# what bpy (Blender 5.x) links or opens at run time on Debian 12 (read off the wheel's libraries with ldd)
libs="libx11-6 libxext6 libxrender1 libxi6 libxfixes3 libxkbcommon0 libxt6 libsm6 libgl1 libegl1"
missing=""
for lib in $libs; do
  dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "ok installed" || missing="$missing $lib"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "install.sh: Blender needs these Debian packages:$missing (install them as root)" >&2
  fi
fi

"$python" -m pip install --no-cache-dir "$@" "$src[$extras]"
"$python" -m synthfarm.cli --version
