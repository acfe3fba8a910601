#!/usr/bin/env bash
# Executes every notebooks/*.ipynb with the Deno Jupyter kernel and fails on the first notebook
# with an error cell (nbconvert exits non-zero on a cell error).
#
# Usage: tools/run-notebooks.sh [OUT_DIR]
#   OUT_DIR  where the executed copies go (default: a fresh temporary folder, removed at exit)
#        tools/run-notebooks.sh --clear [NOTEBOOK...]
#   strips outputs, execution counts and execution timestamps in place (default: all
#   notebooks), as they must be committed; notebook metadata is kept.
#
# Needs Debian's jupyter-nbconvert, python3-nbclient, jupyter-client and python3-ipykernel, and
# the kernel registered with `deno jupyter --install`. Set JUPYTER_NBCONVERT to use another
# nbconvert; by default Debian's /usr/bin/jupyter-nbconvert is preferred, because another
# python3 may come first on PATH without the Jupyter packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--clear" ]; then
  shift
  if [ $# -eq 0 ]; then set -- notebooks/*.ipynb; fi
  # Debian's python3: the nbformat JSON layout (indent 1, key order) is kept as Jupyter writes it.
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(f"run-notebooks: cleared {path}")
PY
  exit 0
fi

nbconvert="${JUPYTER_NBCONVERT:-}"
if [ -z "$nbconvert" ]; then
  if [ -x /usr/bin/jupyter-nbconvert ]; then
    nbconvert=/usr/bin/jupyter-nbconvert
  else
    nbconvert="$(command -v jupyter-nbconvert || true)"
  fi
fi
if [ -z "$nbconvert" ]; then
  echo "run-notebooks: jupyter-nbconvert not found (apt-get install jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel)" >&2
  exit 2
fi

keep=0
if [ $# -ge 1 ]; then
  out="$1"
  keep=1
  mkdir -p "$out"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

shopt -s nullglob
notebooks=(notebooks/*.ipynb)
if [ ${#notebooks[@]} -eq 0 ]; then
  echo "run-notebooks: no notebooks in notebooks/" >&2
  exit 2
fi

for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  start=$SECONDS
  # The kernel runs in the notebook's folder, so its relative imports resolve from there.
  if ! "$nbconvert" --to notebook --execute "$nb" \
    --ExecutePreprocessor.timeout=600 \
    --output-dir "$out" --output "$name" >"$out/$name.log" 2>&1; then
    cat "$out/$name.log" >&2
    echo "run-notebooks: $nb FAILED" >&2
    exit 1
  fi
  if [ "$keep" = 1 ]; then
    echo "run-notebooks: $nb ok ($((SECONDS - start)) s) -> $out/$name.ipynb"
  else
    echo "run-notebooks: $nb ok ($((SECONDS - start)) s)"
  fi
done
