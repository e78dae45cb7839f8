#!/usr/bin/env bash
# The GPU evidence in one call: scripts/gpu_evidence.sh OUT_DIR
#
# On the GPU machine (see README, "GPU evidence"), in under 10 minutes, with everything it keeps under
# OUT_DIR (7 files, each far under 16 MiB):
#   summary.md           stages (PASS/FAIL, each failure with its error line), the speed goals per
#                        compile mode (PASS/FAIL), the training settings and why, the curves' table
#   evidence.log         every stage's output, each line prefixed with its stage
#   bench-eager.json     python -m wnrl.bench, --compile off: layers, DQN update bound, raw env at
#                        several num_envs (the ceiling on this machine's cores), both agents end to end
#   bench-compiled.json  the same agents (and DQN update) with --compile $GPU_EVIDENCE_COMPILE, at the
#                        num_envs that ran fastest eagerly
#   bench-scaling.png    steps/s against num_envs, eager
#   runs.tar.gz          A2C on Pong (~4 min) and DQN on Breakout (~3 min), trained at the same time
#                        with the fastest (num_envs, compile) the two benches measured: event files,
#                        config.json and console logs (checkpoints left out)
#   curves.png           their learning curves (python -m wnrl.plot)
# A stage that breaks (a CUDA graph overwriting an output, a compile that falls back to eager, a crash)
# is recorded with its last error line and the later stages still run; the script then exits 1.
# Goals that are missed are reported, not errors.
#
# Knobs (environment variables):
#   GPU_EVIDENCE_SCALE=1          multiplies the time budgets below (0.5: a call half as long)
#   GPU_EVIDENCE_A2C_SECONDS      A2C training budget (240 × scale)
#   GPU_EVIDENCE_DQN_SECONDS      DQN training budget (180 × scale)
#   GPU_EVIDENCE_BENCH_SECONDS    seconds each agent is measured in the eager bench (10 × scale)
#   GPU_EVIDENCE_COMPILED_SECONDS the same in the compiled bench, compile time included (45 × scale)
#   GPU_EVIDENCE_DEADLINE=560     seconds the whole script may take; training is shortened to fit
#   GPU_EVIDENCE_PARALLEL=1       train A2C and DQN at the same time (0: one after the other)
#   GPU_EVIDENCE_DEVICE=cuda      the --device of every stage (cpu: to test this script's logic)
#   GPU_EVIDENCE_COMPILE=reduce-overhead   the compiled bench's mode ("" skips that bench)
#   GPU_EVIDENCE_BENCH_ARGS, GPU_EVIDENCE_A2C_ARGS, GPU_EVIDENCE_DQN_ARGS
#                                 extra flags for both benches / the A2C run / the DQN run (they win)
#   GPU_EVIDENCE_A2C_SPS=4000, GPU_EVIDENCE_DQN_SPS=2000
#                                 steps/s assumed when the bench measured none (to size the runs)
#   PYTHON=python3
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

SCALE=${GPU_EVIDENCE_SCALE:-1}
scaled() { awk -v s="$SCALE" -v x="$1" 'BEGIN { v = x * s; if (v < 1) v = 1; printf "%d", v + 0.5 }'; }
A2C_SECONDS=${GPU_EVIDENCE_A2C_SECONDS:-$(scaled 240)}
DQN_SECONDS=${GPU_EVIDENCE_DQN_SECONDS:-$(scaled 180)}
BENCH_SECONDS=${GPU_EVIDENCE_BENCH_SECONDS:-$(scaled 10)}
COMPILED_SECONDS=${GPU_EVIDENCE_COMPILED_SECONDS:-$(scaled 45)}
DEADLINE=${GPU_EVIDENCE_DEADLINE:-560}
PARALLEL=${GPU_EVIDENCE_PARALLEL:-1}
DEVICE=${GPU_EVIDENCE_DEVICE:-cuda}
COMPILE=${GPU_EVIDENCE_COMPILE-reduce-overhead}
A2C_SPS=${GPU_EVIDENCE_A2C_SPS:-4000}
DQN_SPS=${GPU_EVIDENCE_DQN_SPS:-2000}
read -r -a BENCH_EXTRA <<<"${GPU_EVIDENCE_BENCH_ARGS:-}"
read -r -a A2C_EXTRA <<<"${GPU_EVIDENCE_A2C_ARGS:-}"
read -r -a DQN_EXTRA <<<"${GPU_EVIDENCE_DQN_ARGS:-}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-evidence.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/logs" "$WORK/runs"
SUMMARY="$OUT/summary.md"
LOG="$OUT/evidence.log"
: >"$LOG"

say() { echo "$*" | tee -a "$SUMMARY"; }
remaining() { echo $((DEADLINE - SECONDS)); }

# The line that says what broke: the last "error: ..." or exception line, else the last line printed.
error_line() {
  local line
  line=$(grep -E '^(error: |warning: --compile )|^[A-Za-z_][A-Za-z0-9_.]*(Error|Exception|Exit|Failed|Interrupt)[A-Za-z]*: ' \
    "$1" | tail -n 1 || true)
  [ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1 || true)
  echo "${line:-no output}"
}

# stage NAME LIMIT CMD...: runs CMD (SIGTERM after LIMIT seconds, SIGKILL 20 s later) with its output in
# the log (each line prefixed "[NAME] ") and on stdout, and records PASS or FAIL in the summary. A compile
# that fell back to eager counts as a failure: the GPU path it was there to test broke.
stage() {
  local name=$1 limit=$2 rc start=$SECONDS why fallback
  shift 2
  local log="$WORK/logs/$name.log"
  echo "[$name] \$ $*" | tee -a "$LOG"
  set +e
  timeout --kill-after=20 "$limit" "$@" 2>&1 | tee "$log" | sed -u "s/^/[$name] /" | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  set -e
  local took=$((SECONDS - start))
  fallback=$(grep -m 1 '^warning: --compile' "$log" || true)
  if [ "$rc" -ne 0 ]; then
    why="exit $rc"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then why="stopped at its ${limit}s limit"; fi
    say "FAIL stage $name ($why, ${took}s): $(error_line "$log")"
    echo "$name" >>"$WORK/failed"
  elif [ -n "$fallback" ]; then
    say "FAIL stage $name (${took}s): compile fell back to eager: $fallback"
    echo "$name" >>"$WORK/failed"
  else
    say "PASS stage $name (${took}s)"
  fi
  return 0
}

# fastest AGENT JSON...: "num_envs compile steps_per_s" of the agent's fastest row in the bench files.
fastest() {
  "$PY" - "$@" <<'PY'
import json
import sys

agent, rows = sys.argv[1], []
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            rows += json.load(f).get("agents", [])
    except (OSError, ValueError):
        pass
rows = [r for r in rows if r["agent"] == agent and r.get("steps_per_s")]
if rows:
    best = max(rows, key=lambda r: r["steps_per_s"])
    print(best["num_envs"], best["compile"], round(best["steps_per_s"]))
PY
}

goal_lines() { # MODE LOG: the bench's goal lines (PASS/FAIL on a GPU, n/a on a CPU), into the summary
  if grep -qE '^(PASS|FAIL|n/a) ' "$2" 2>/dev/null; then
    grep -E '^(PASS|FAIL|n/a) ' "$2" | sed "s/^/[$1] /" | tee -a "$SUMMARY"
  else
    say "[$1] FAIL no goal was reported (the bench did not finish; see evidence.log)"
  fi
}

{
  echo "# GPU evidence, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: scripts/gpu_evidence.sh; device $DEVICE, compile mode ${COMPILE:-(none)}; budgets: A2C ${A2C_SECONDS}s,"
  echo "DQN ${DQN_SECONDS}s (parallel=$PARALLEL), bench ${BENCH_SECONDS}s per agent eager / ${COMPILED_SECONDS}s compiled,"
  echo "deadline ${DEADLINE}s. $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPU cores."
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 1)"
  fi
  echo
  echo "## Stages"
} | tee "$SUMMARY"

# 1. Is the GPU there and does it compute?
if [ "$DEVICE" != "cpu" ]; then
  stage device 120 "$PY" -c "
import torch
assert torch.cuda.is_available(), 'torch sees no CUDA GPU (torch ' + torch.__version__ + ')'
x = torch.randn(2048, 2048, device='$DEVICE')
y = float((x @ x).sum())
print(torch.cuda.get_device_name(), '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| matmul finite:', y == y)
"
  [ ! -s "$WORK/logs/device.log" ] || say "  $(tail -n 1 "$WORK/logs/device.log")"
  # The tests that only a GPU runs (the WN layers' fused path against a float64 reference, ~5 s);
  # without xdist's options, which the GPU machine's pytest may lack.
  stage gpu-tests 120 "$PY" -m pytest -q -o addopts="" -p no:cacheprovider tests/test_layers.py -k gpu
fi

# 2. The bench, eager: every section (the agents DQN and A2C, whose training follows; PPO and PQN are left
# to `python -m wnrl.bench --sections agents --dqn-envs none --a2c-envs none` so that this stage keeps its 150 s).
stage bench-eager "$(($(remaining) > 150 ? 150 : $(remaining)))" "$PY" -m wnrl.bench --device "$DEVICE" \
  --compile off --sections layers,env,agents,memory --repeats 10 --env-sizes 8,16,32,64 --env-seconds 1 \
  --dqn-envs 8,32 --a2c-envs 16,64 --ppo-envs none --pqn-envs none --agent-seconds "$BENCH_SECONDS" \
  --json "$OUT/bench-eager.json" --png "$OUT/bench-scaling.png" "${BENCH_EXTRA[@]}"

# 3. The bench, compiled: the agents (and the DQN update) at the num_envs that ran fastest eagerly.
train_wall=$((PARALLEL == 1 ? (A2C_SECONDS > DQN_SECONDS ? A2C_SECONDS : DQN_SECONDS) : A2C_SECONDS + DQN_SECONDS))
if [ -n "$COMPILE" ]; then
  read -r dqn_n _ _ <<<"$(fastest dqn "$OUT/bench-eager.json")" || true
  read -r a2c_n _ _ <<<"$(fastest a2c "$OUT/bench-eager.json")" || true
  # It may eat into the training: down to 3/4 of its budget (then shortened below, and said so).
  limit=$(($(remaining) - train_wall * 3 / 4 - 60))
  [ "$limit" -le 200 ] || limit=200
  if [ "$limit" -ge 30 ]; then
    stage bench-compiled "$limit" "$PY" -m wnrl.bench --device "$DEVICE" --compile "$COMPILE" \
      --sections agents --repeats 10 --dqn-envs "${dqn_n:-8}" --a2c-envs "${a2c_n:-16}" --ppo-envs none --pqn-envs none \
      --agent-seconds "$COMPILED_SECONDS" --json "$OUT/bench-compiled.json" "${BENCH_EXTRA[@]}"
  else
    say "FAIL stage bench-compiled (not run): ${limit}s left for it before the deadline"
    echo bench-compiled >>"$WORK/failed"
  fi
fi

# 4. Training: the fastest (num_envs, compile) per agent from both benches, sized to the budget.
left=$(($(remaining) - 60))  # start-up, the final checkpoints, the curves and the archive
if [ "$left" -lt "$train_wall" ]; then
  A2C_SECONDS=$((A2C_SECONDS * left / train_wall > 10 ? A2C_SECONDS * left / train_wall : 10))
  DQN_SECONDS=$((DQN_SECONDS * left / train_wall > 10 ? DQN_SECONDS * left / train_wall : 10))
  say "NOTE training shortened to fit the ${DEADLINE}s deadline: A2C ${A2C_SECONDS}s, DQN ${DQN_SECONDS}s"
fi
train_args() { # AGENT SECONDS FALLBACK_ENVS FALLBACK_SPS: prints the flags, explains them in the summary
  local agent=$1 secs=$2 n mode sps source
  read -r n mode sps <<<"$(fastest "$agent" "$OUT/bench-eager.json" "$OUT/bench-compiled.json")" || true
  if [ -n "${sps:-}" ]; then
    source="the fastest in the benches: ${sps} steps/s"
  else
    n=$3 mode=off sps=$4 source="fixed: the benches measured no ${agent} steps/s; ${sps} steps/s assumed"
  fi
  local total=$((sps * secs > n ? sps * secs : n))
  echo "- ${agent}: ${n} envs, compile ${mode} (${source}); ${secs}s, --total-steps ${total} (${sps} steps/s × ${secs}s)" \
    >>"$WORK/settings"
  echo "--num-envs $n --compile $mode --total-steps $total"
}
: >"$WORK/settings"
read -r -a a2c_flags <<<"$(train_args a2c "$A2C_SECONDS" 16 "$A2C_SPS")"
read -r -a dqn_flags <<<"$(train_args dqn "$DQN_SECONDS" 8 "$DQN_SPS")"
[ -z "${GPU_EVIDENCE_A2C_ARGS:-}" ] || echo "- a2c, extra flags (they win): $GPU_EVIDENCE_A2C_ARGS" >>"$WORK/settings"
[ -z "${GPU_EVIDENCE_DQN_ARGS:-}" ] || echo "- dqn, extra flags (they win): $GPU_EVIDENCE_DQN_ARGS" >>"$WORK/settings"
common=(--device "$DEVICE" --logdir "$WORK/runs" --progress false --checkpoint-every 1000000000)
# --time-limit ends a run as Ctrl-C does (it finishes the step, writes its checkpoint, exits 0) once its
# loop has run that long; the stage's own limit only catches a run that hangs.
stage train-a2c-pong $((A2C_SECONDS + 90)) "$PY" -m wnrl.train a2c --env Pong --run-name pong_a2c "${common[@]}" \
  --time-limit "$A2C_SECONDS" "${a2c_flags[@]}" "${A2C_EXTRA[@]}" &
a2c_pid=$!
[ "$PARALLEL" = 1 ] || wait "$a2c_pid"
stage train-dqn-breakout $((DQN_SECONDS + 90)) "$PY" -m wnrl.train dqn --env Breakout --run-name breakout_dqn \
  "${common[@]}" --time-limit "$DQN_SECONDS" "${dqn_flags[@]}" "${DQN_EXTRA[@]}" &
dqn_pid=$!
wait "$a2c_pid" "$dqn_pid" || true

# 5. The curves and their table; the runs, without checkpoints, in one archive.
if find "$WORK/runs" -name 'events.out.tfevents.*' | grep -q .; then
  stage curves 120 "$PY" -m wnrl.plot "$WORK/runs" -o "$OUT/curves.png" --summary
  cp "$WORK/logs/"train-*.log "$WORK/runs/" 2>/dev/null || true
  tar -czf "$OUT/runs.tar.gz" -C "$WORK" --exclude=checkpoints runs
else
  say "FAIL stage curves (not run): no training run wrote an event file"
  echo curves >>"$WORK/failed"
fi

{
  echo
  echo "## Goals"
} | tee -a "$SUMMARY"
goal_lines eager "$WORK/logs/bench-eager.log"
if [ -n "$COMPILE" ] && [ -f "$WORK/logs/bench-compiled.log" ]; then
  goal_lines "$COMPILE" "$WORK/logs/bench-compiled.log"
fi
{
  echo
  echo "## Training settings"
  cat "$WORK/settings"
  if [ -f "$WORK/logs/curves.log" ]; then
    echo
    echo "## Curves (python -m wnrl.plot --summary)"
    grep -v '^wrote ' "$WORK/logs/curves.log" || true
  fi
  echo
  echo "## Files"
  find "$OUT" -maxdepth 1 -type f -printf '%f: %s bytes\n' | sort
  echo
} | tee -a "$SUMMARY"

if [ -s "$WORK/failed" ]; then
  echo "RESULT: $(wc -l <"$WORK/failed") stage(s) failed: $(paste -sd, "$WORK/failed")" >>"$SUMMARY"
else
  echo "RESULT: every stage ran" >>"$SUMMARY"
fi
echo
echo "=================== $SUMMARY ==================="
cat "$SUMMARY"
if [ -s "$WORK/failed" ]; then
  grep '^FAIL stage' "$SUMMARY" >&2
  exit 1
fi
