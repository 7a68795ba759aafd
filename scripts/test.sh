#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m pytest "$@"
