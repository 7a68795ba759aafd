# Check that the project is a git checkout before DVC runs, because DVC keeps params, metrics and
# experiments per git commit. Sourced by pipeline.sh and experiment.sh, before any set-up.

require_git_repository() {
  if ! command -v git >/dev/null; then
    echo "ESLP: git not found; install git, because DVC records params and metrics in git commits." >&2
    exit 1
  fi
  if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "ESLP: $PWD is not a git repository, and DVC needs one to record params and metrics." >&2
    echo "Clone the repository with git, or make this copy one:" >&2
    echo "  git init && git add -A && git commit -m \"Start\"" >&2
    exit 1
  fi
}

require_git_commit() {
  require_git_repository
  if ! git rev-parse --verify --quiet HEAD >/dev/null; then
    echo "ESLP: the git repository in $PWD has no commit yet, and \`dvc exp run\` needs one as the baseline of its experiments." >&2
    echo "Commit the project first:" >&2
    echo "  git add -A && git commit -m \"Start\"" >&2
    exit 1
  fi
}
