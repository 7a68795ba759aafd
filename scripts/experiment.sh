#!/usr/bin/env bash
# Set up .venv if needed, then run one DVC experiment. Arguments go to `dvc exp run`,
# for example: scripts/experiment.sh -S sentences.happy_threshold=0.8
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/git_check.sh
require_git_commit
source scripts/setup.sh
dvc exp run "$@"
