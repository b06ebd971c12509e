# Shared by scripts/run, scripts/test and scripts/bench: make .venv and install the project.
#   ensure_venv [EXTRAS]   e.g. ensure_venv test   (installs -e '.[test]')
# Re-running is fast: a stamp file newer than pyproject.toml skips the install.

venv=.venv

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

pick_python() {
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_venv() {
  local extras=${1:-} python spec=.
  local stamp=$venv/.appraisal-installed${extras:+-$extras}
  [[ -n $extras ]] && spec=".[$extras]"
  if [[ ! -x $venv/bin/python ]]; then
    python=$(pick_python) || die "need python3.11 or newer on PATH"
    say "creating $venv with $($python --version 2>&1)"
    # --clear: a .venv whose interpreter cannot run (moved, deleted) is rebuilt.
    "$python" -m venv --clear "$venv"
  fi
  if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    say "installing the project${extras:+ with [$extras]} into $venv"
    "$venv/bin/python" -m pip install -qq --disable-pip-version-check -e "$spec"
    touch "$stamp"
  fi
}
