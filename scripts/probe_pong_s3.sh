#!/bin/bash
# A2C Pong seed 3 on the 5M schedule (the run whose trunk died at ~130k steps), one setting changed,
# stopped with Ctrl-C once a checkpoint at or past STOP_STEP exists (docs/results.md, "The dead trunk
# on Pong seed 3"). Usage, from the repository root:
#   scripts/probe_pong_s3.sh NAME STOP_STEP [train flags...]
#   scripts/probe_pong_s3.sh a2c_Pong_layer_s3_5Msched 250000 --norm layer
# The run goes to runs/probes/NAME, its output to logs/NAME.log; one torch thread, nice 10.
set -u
NAME=$1; STOP=$2; shift 2
mkdir -p logs runs/probes
OMP_NUM_THREADS=1 nice -n 10 python -m wnrl.train a2c --env Pong --total-steps 5000000 --seed 3 \
  --checkpoint-every 50000 --logdir runs/probes --run-name "$NAME" --progress false "$@" > "logs/$NAME.log" 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  sleep 30
  last=$(ls "runs/probes/$NAME/checkpoints" 2>/dev/null | grep -o '[0-9]\+' | sort -n | tail -1)
  if [ -n "$last" ] && [ "$((10#$last))" -ge "$STOP" ]; then
    kill -INT $PID
    wait $PID
    echo "stopped at $((10#$last))" >> "logs/$NAME.log"
  fi
done
