#!/usr/bin/env bash
# PQN's norms side by side on one GPU: scripts/gpu_pqn_norms.sh OUT_DIR [SECONDS]
#
# Runs PQN on Pong with --norm wn, layer and none at the same time (one process each, two torch threads
# each, the GPU and the machine's cores shared), with the PQN paper's Atari rollout shape (purejaxql: 128
# envs x 32 steps, 2 epochs of 32 minibatches) and --total-steps 10M, so the learning rate and epsilon
# follow CleanRL's published 10M schedule; each stops by --time-limit SECONDS (450) with its checkpoint.
# Sized for one device call of under 10 minutes: one run alone ran 8.7k steps/s on an H200 (16 cores), so
# three sharing it evenly would reach ~1.3M steps each, past where PQN took off on Pong there (1.02M);
# three at a time is not yet measured.
# Keeps under OUT_DIR: one console log per norm, table.md (scripts/takeoff_table.py: take-off points,
# 100k windows, dormant units) and csv.tar.gz (python -m wnrl.plot --export: per-episode CSVs to commit
# under docs/data/) of every run that logged a game. Exits 1 if any run or step failed (the others are kept).
#
# Environment: SEED (1), NORMS ("wn layer none"), ENV (Pong), PQN_ARGS (extra train flags, last: they win),
# RUNS_DIR (a new temporary directory), PYTHON (python3).
set -uo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [SECONDS]" >&2
  exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LIMIT=${2:-450}
SEED=${SEED:-1}
ENV_ID=${ENV:-Pong}
RUNS=${RUNS_DIR:-$(mktemp -d)}
mkdir -p "$RUNS"
names=()
for norm in ${NORMS:-wn layer none}; do
  name=pqn_${ENV_ID//\//-}_gpu_${norm}_s${SEED}
  names+=("$RUNS/$name")
  # shellcheck disable=SC2086  # PQN_ARGS is a list of flags
  "$PY" -m wnrl.train pqn --env "$ENV_ID" --seed "$SEED" --norm "$norm" --total-steps 10000000 \
    --num-envs 128 --n-steps 32 --num-minibatches 32 --update-epochs 2 --time-limit "$LIMIT" --threads 2 \
    --progress false --logdir "$RUNS" --run-name "$name" ${PQN_ARGS:-} > "$OUT/$norm.log" 2>&1 &
done
status=0
for job in $(jobs -p); do
  wait "$job" || status=1
done
# each run on its own: one that failed or logged no game must not cost the others their data
exported=()
for run in "${names[@]}"; do
  if [ -d "$run" ] && "$PY" -m wnrl.plot --export "$OUT/csv" "$run"; then
    exported+=("$run")
  else
    echo "not exported: $run" >&2
    status=1
  fi
done
if [ ${#exported[@]} -gt 0 ]; then
  tar czf "$OUT/csv.tar.gz" -C "$OUT" csv && rm -r "$OUT/csv" || status=1
  "$PY" scripts/takeoff_table.py "${exported[@]}" | tee "$OUT/table.md" || status=1
fi
tail -n 3 "$OUT"/*.log
exit $status
