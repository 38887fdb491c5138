#!/usr/bin/env bash
# One-command set-up: creates a virtual environment with the CPU build of
# torch and the workbench package (editable) plus its dev extras.
#
#   bash scripts/setup.sh                 # -> .venv in the repo root
#   VENV=/tmp/wb bash scripts/setup.sh    # -> another location
#
# Env vars:
#   VENV             where to put the venv (default: <repo>/.venv)
#   PYTHON           interpreter used to create it (default: python3)
#   TORCH_INDEX_URL  wheel index for torch (default: PyTorch's CPU index)
#
# Re-running reuses an existing venv and only installs what is missing.
set -euo pipefail

TORCH_VERSION="2.13.0+cpu"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

cd "$REPO_ROOT"

if [[ -x "$VENV/bin/python" ]]; then
    echo "==> Reusing virtual environment $VENV"
else
    echo "==> Creating virtual environment $VENV ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

echo "==> Upgrading pip"
"$PY" -m pip install --quiet --upgrade pip

# Probe the torch index quickly: if it cannot be reached, pip would otherwise
# spend a long time retrying it before falling back to its other sources.
torch_index_args=()
if "$PY" - "$TORCH_INDEX_URL" <<'PYEOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/", timeout=5).close()
except Exception:
    sys.exit(1)
PYEOF
then
    torch_index_args=(--extra-index-url "$TORCH_INDEX_URL")
    echo "==> Installing torch==$TORCH_VERSION (CPU build, index $TORCH_INDEX_URL)"
else
    echo "==> $TORCH_INDEX_URL unreachable; installing torch==$TORCH_VERSION from pip's configured sources only"
fi
"$PY" -m pip install --quiet ${torch_index_args[@]+"${torch_index_args[@]}"} "torch==$TORCH_VERSION"

echo "==> Installing workbench (editable) with dev extras"
"$PY" -m pip install --quiet -e ".[dev]"

echo "==> Done. Run the tests with: $VENV/bin/python -m pytest"
