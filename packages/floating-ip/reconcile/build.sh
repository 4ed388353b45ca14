#!/usr/bin/env bash
# Run by the deployer (doctl serverless deploy, or locally) inside this folder: builds the
# `virtualenv/` the Python runtime activates. Wheels are chosen for the runtime's platform
# (Linux x86_64, CPython 3.11), not the machine that builds, so a deploy from a Mac works too.
#
# PYTHON names the interpreter that builds (default python3): it needs the `virtualenv` and
# `pip` modules. The deployer runs this script through bash, which may read ~/.bashrc first
# and so pick another python3 than your shell does: set PYTHON to an absolute path if so.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
rm -rf virtualenv floating_ip_common
# The package the function shares with the in-cluster parts lives in in-cluster/; the deployer
# takes '..' in .include only towards lib/, so the build puts a copy beside this script (not
# committed: .gitignore), and .include adds it to the zip.
cp -R ../../../in-cluster/floating_ip_common floating_ip_common
rm -rf floating_ip_common/__pycache__
"$PYTHON" -m virtualenv --without-pip virtualenv >/dev/null
# activate_this.py adds the site-packages of the interpreter that created the virtualenv
# (lib/python3.X/...): install there, whatever that version is, or the runtime finds nothing.
site_packages=$(virtualenv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# requirements.txt is an allow-list of exactly the distributions the function imports, so
# --no-deps: what the libraries merely declare (kubernetes pulls aiohttp for its asyncio client,
# pydo pulls azure-identity and msrest) is never run here, and would only make the zip bigger
# and every cold start's unzip longer. tests/function/test_deployable.py traces a real
# invocation of the built zip and fails when it needs a distribution this list lacks.
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps \
  --requirement requirements.txt \
  --target "$site_packages" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --implementation cp --python-version 3.11 --only-binary=:all:
# The asyncio clients of pydo (a third of pydo) and kubernetes (5.7 MB) are never imported by
# the function: leaving them out makes the zip smaller and the unzip on every cold start shorter.
rm -rf "$site_packages/pydo/aio" "$site_packages/kubernetes/aio"
# Bytecode for what a cold start imports, only when building with the runtime's Python 3.11
# (bytecode of another version would be ignored at run time, and only cost room).
if [[ "$(virtualenv/bin/python -c 'import sys; print(sys.version_info[:2] == (3, 11))')" == True ]]; then
  virtualenv/bin/python precompile.py "$site_packages" ../../../lib .
fi
