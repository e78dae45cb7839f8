#!/bin/bash
# A2C Pong on the 5M schedule (the documented 5M command; seed 3's trunk died there at ~130k steps), for
# one seed and one setting, stopped with Ctrl-C once a checkpoint at or past STOP_STEP exists, then
# exported (games, losses and dead fractions) to EXPORT_DIR/NAME (docs/results.md, "The dead trunk on
# Pong"). Usage, from the repository root:
#   scripts/probe_pong.sh NAME SEED STOP_STEP EXPORT_DIR [train flags...]
#   scripts/probe_pong.sh a2c_Pong_layer_s3_5Msched 3 250000 docs/data/pong_a2c_s3_probes --norm layer
# The run goes to runs/probes/NAME, its output to logs/NAME.log; one torch thread, nice 10. A probe that
# already stopped is skipped; one cut short (the session ended) is resumed from its checkpoint.
set -u
NAME=$1; SEED=$2; STOP=$3; EXPORT=$4; shift 4
mkdir -p logs runs/probes
if grep -q "^stopped at" "logs/$NAME.log" 2>/dev/null; then exit 0; fi
if [ -d "runs/probes/$NAME/checkpoints" ]; then
  OMP_NUM_THREADS=1 nice -n 10 python -m wnrl.train a2c --resume "runs/probes/$NAME" >> "logs/$NAME.log" 2>&1 &
else
  rm -rf "runs/probes/$NAME"
  OMP_NUM_THREADS=1 nice -n 10 python -m wnrl.train a2c --env Pong --total-steps 5000000 --seed "$SEED" \
    --checkpoint-every 50000 --logdir runs/probes --run-name "$NAME" --progress false "$@" >> "logs/$NAME.log" 2>&1 &
fi
PID=$!
while kill -0 $PID 2>/dev/null; do
  sleep 30
  last=$(ls "runs/probes/$NAME/checkpoints" 2>/dev/null | grep -o '[0-9]\+' | sort -n | tail -1)
  if [ -n "$last" ] && [ "$((10#$last))" -ge "$STOP" ]; then
    kill -INT $PID
    wait $PID
    echo "stopped at $((10#$last))" >> "logs/$NAME.log"
    python -m wnrl.plot --export "$EXPORT" "runs/probes/$NAME" >> "logs/$NAME.log" 2>&1
  fi
done
