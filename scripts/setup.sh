#!/usr/bin/env bash
# Set up DSID in ./.venv on a fresh machine (Python >= 3.10, no GPU needed). Idempotent: a second
# run with an up-to-date environment returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.dsid-setup-$(sha1sum requirements.lock pyproject.toml | sha1sum | cut -c1-12)
if [ -f "$STAMP" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build
.venv/bin/python -m pip install -q "$(grep '^torch==' requirements.lock)"
.venv/bin/python -m pip install -q -r requirements.lock
# nlb-tools 0.0.4 pins pandas<=1.3.4 (no wheel for 3.11) but works with pandas 2.x: its real needs
# are in requirements.lock, the package itself goes in without its declared dependencies.
.venv/bin/python -m pip install -q --no-deps nlb-tools==0.0.4
.venv/bin/python -m pip install -q --no-deps -e .
# the compiled recurrent core, built now rather than at the first model run (about a minute; on a
# machine without a C++ compiler DSID warns and runs the reference code, same maths, slower)
.venv/bin/python -c "from dsid.modules.recurrent.native import native_scans; native_scans()" \
  || echo "the compiled recurrent core was not built now; DSID builds it at the first model run"
rm -f .venv/.dsid-setup-*
touch "$STAMP"
echo "DSID environment ready in .venv"
