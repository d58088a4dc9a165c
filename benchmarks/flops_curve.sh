#!/usr/bin/env bash
# Start (or resume) the issue-14 experiment in the background: `flops_curve.py train` (two
# trainings at once) and one `flops_curve.py evaluate`, each from a git worktree of a fixed
# commit, with logs and run directories in WORK (outside the work tree).
#
#   benchmarks/flops_curve.sh TRAIN_COMMIT EVAL_COMMIT [WORK]     # e.g. fd4eaf4 a93f6d0 /work/exp14
#
# Both commands skip finished work, so re-running this after a stopped session resumes. On a
# machine where the session's processes share the CPU with other jobs, the experiment's process
# group is given more weight (Linux autogroup nice -10) so that other sessions do not starve it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRAIN_COMMIT="${1:?usage: $0 TRAIN_COMMIT EVAL_COMMIT [WORK]}"
EVAL_COMMIT="${2:?usage: $0 TRAIN_COMMIT EVAL_COMMIT [WORK]}"
WORK="${3:-/work/exp14}"
PYTHON="$REPO/.venv/bin/python"
[ -x "$PYTHON" ] || { echo "error: $PYTHON not found; run 'make setup' first" >&2; exit 1; }
mkdir -p "$WORK"

tree() {  # worktree of one commit, created once
  local commit="$1" dir="$WORK/wt-$1"
  [ -d "$dir" ] || git -C "$REPO" worktree add --detach "$dir" "$commit" >&2
  echo "$dir"
}

if [ -w /proc/self/autogroup ]; then echo -10 > /proc/self/autogroup 2>/dev/null || true; fi
TRAIN_TREE="$(tree "$TRAIN_COMMIT")"
EVAL_TREE="$(tree "$EVAL_COMMIT")"
# The budgets are given explicitly: the two commits' defaults may differ (docs/results.md §8).
BUDGETS=(--stage1-steps 10000 --base-steps 6000)
# The order in which the arms train and are measured: one UL and one KL-VAE arm first; the
# last, UL with a stage 1 stopped at 3,000 steps, is the ablation added on 2026-12-07.
ARMS=(--arms ul-lf3.0,kl-1e-6,kl-1e-2,ul-lf1.5,pixels,ul-lf1.5-s3000)
# The UL decoding chosen on the decoder grid by the first run of these arms (commit db4accf;
# the grid is kept in docs/results/flops_curve_details.json): not measured again.
DECODER=(--decoder 32,clean)
# The venv's editable install points at this checkout's src/; each worktree runs its own code.
(cd "$TRAIN_TREE/benchmarks" && PYTHONPATH="$TRAIN_TREE/src" nohup "$PYTHON" flops_curve.py train --work-dir "$WORK" \
   --jobs 2 "${BUDGETS[@]}" "${ARMS[@]}" >> "$WORK/train.out" 2>&1 &)
(cd "$EVAL_TREE/benchmarks" && PYTHONPATH="$EVAL_TREE/src" OMP_NUM_THREADS=1 nohup "$PYTHON" flops_curve.py evaluate \
   --work-dir "$WORK" "${BUDGETS[@]}" "${ARMS[@]}" "${DECODER[@]}" >> "$WORK/evaluate.out" 2>&1 &)
echo "started: training from $TRAIN_TREE, evaluation from $EVAL_TREE; logs in $WORK/*.out"
