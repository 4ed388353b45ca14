#!/usr/bin/env bash
# Run by the deployer (doctl serverless deploy, or locally) inside this folder: builds the
# `virtualenv/` the Python runtime activates. Wheels are chosen for the runtime's platform
# (Linux x86_64, CPython 3.11), not the machine that builds, so a deploy from a Mac works too.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf virtualenv
python3 -m virtualenv --without-pip virtualenv >/dev/null
python3 -m pip install --quiet --disable-pip-version-check --no-compile \
  --requirement requirements.txt \
  --target virtualenv/lib/python3.11/site-packages \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  --implementation cp --python-version 3.11 --only-binary=:all:
