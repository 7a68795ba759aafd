# Create .venv with Python 3.11+ and install ESLP with its test tools; skip the install
# when pyproject.toml has not changed since the last one. Sourced by pipeline.sh and test.sh.
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "ESLP needs Python 3.11 or newer; $python is $("$python" --version 2>&1). Set PYTHON to a newer interpreter." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.eslp-installed
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  cp pyproject.toml "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
export DVC_NO_ANALYTICS=1
