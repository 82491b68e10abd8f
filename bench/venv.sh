# Sourced by the benches that need a PyPI package (pypdfium2, PyMuPDF):
#
#   . bench/venv.sh
#   bench_venv "${ESG_X_VENV:-}" module 'package==version'   # sets VENV_PYTHON
#
# With a directory, the venv is kept there and reused; without one, a
# throw-away venv is made and removed when the script exits.
bench_venv() {
  local dir=$1 module=$2 requirement=$3
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/esg-bench-venv.XXXXXX")
    # shellcheck disable=SC2064 # expand now: $dir is local
    trap "rm -rf '$dir'" EXIT
  fi
  if ! "$dir/bin/python" -c "import $module" 2>/dev/null; then
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$requirement"
  fi
  VENV_PYTHON="$dir/bin/python"
}
