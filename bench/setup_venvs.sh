#!/usr/bin/env bash
# Builds the benchmark anchors' virtual environments (bench-only dependencies, never the service's):
#   /work/.venvs/bench-anchors  crowd-kit, krippendorff, choix   (bench.aggregation, BENCH_ANCHOR_PYTHON)
#   /work/.venvs/bench-trl      TRL                             (bench.reward,      BENCH_TRL_PYTHON)
# Both see this interpreter's site-packages (torch, transformers, crowdbridge itself) so the anchors run on
# the same numerical stack as ours; what they pin on top shadows it inside the venv only.
# Usage: bench/setup_venvs.sh [VENV_ROOT]   (default /work/.venvs; idempotent)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:-/work/.venvs}"
python="${PYTHON:-python}"
mkdir -p "$root"
for name in anchors trl; do
  venv="$root/bench-$name"
  [ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements-$name.txt"
  echo "bench-$name ready: $venv/bin/python"
done
