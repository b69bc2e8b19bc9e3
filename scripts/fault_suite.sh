#!/usr/bin/env bash
# The fault-injection suite, slow cases included: processes killed in each phase of a run, a full
# disk at each write, read-only folders, paths with spaces and accents, bad input through every
# command. Ends with "fault-injection suite: N of M cases pass". Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m pytest -m faults -q -rs "$@"
