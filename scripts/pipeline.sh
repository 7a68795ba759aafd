#!/usr/bin/env bash
# Set up .venv if needed, then run the whole pipeline. Arguments go to `dvc repro`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/git_check.sh
require_git_repository
source scripts/setup.sh
dvc repro "$@"
