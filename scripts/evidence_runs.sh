#!/bin/bash
# Issue 23's runs still to do, in order, on the 2-core CPU, two runs at a time with one torch thread each.
# Re-running the script goes on where the last session stopped: a finished run is skipped, a cut one
# resumed from its checkpoint (the grid does the same for its cells). From the repository root, ONE of:
#   nohup scripts/evidence_runs.sh minatar > logs/minatar_queue.log 2>&1 &
#   nohup scripts/evidence_runs.sh pong    > logs/pong_queue.log 2>&1 &
#   nohup scripts/evidence_runs.sh next    > logs/next_queue.log 2>&1 &   (after pong)
#   nohup scripts/evidence_runs.sh screen  > logs/screen_queue.log 2>&1 &
#   nohup scripts/evidence_runs.sh screen_then_next > logs/queue.log 2>&1 &   (a fresh machine)
#   WAIT_PID=<a probe's pid> nohup scripts/evidence_runs.sh screen2 > logs/queue2.log 2>&1 &
#   nohup scripts/evidence_runs.sh agents27 > logs/agents27_queue.log 2>&1 &   (issue 27: PPO, PQN Pong seed 1)
#   nohup scripts/evidence_runs.sh pqnnorms > logs/pqnnorms_queue.log 2>&1 &   (issue 27: PQN's norm on Pong)
#   nohup scripts/evidence_runs.sh after27 > logs/after27_queue.log 2>&1 &   (instead of pqnnorms: then the 5M headline)
#   nohup scripts/evidence_runs.sh headline5m > logs/headline5m_queue.log 2>&1 &   (the 5M headline's seeds 2, 3 at once)
# Not both at once: beside a Pong run a MinAtar run goes ~17x slower (measured: ~450 against ~8,000
# steps/s with the Pong run paused), while two MinAtar runs, or two Pong runs, share the cores evenly.
# A finished Pong run is exported at once to docs/data/pong_a2c_2M/ (commit it); MinAtar's cells go to
# runs/minatar and runs/minatar_matched (`python -m wnrl.plot --export docs/data/minatar_a2c_2M runs/minatar/*`).
set -u
cd "$(dirname "$0")/.."
mkdir -p logs

pong() {  # NAME SEED [train flags...]: A2C Pong, the 2M budget (the learning rate decayed over 2M)
  local name=$1 seed=$2
  shift 2
  other a2c "$name" "$seed" 2000000 docs/data/pong_a2c_2M "$@"
}

other() {  # AGENT NAME SEED TOTAL EXPORT_DIR [train flags...]: any agent on Pong, resumed if cut
  local agent=$1 name=$2 seed=$3 total=$4 export=$5
  shift 5
  if grep -q "^done:" "logs/$name.log" 2>/dev/null; then return; fi
  if [ -d "runs/evidence/$name" ]; then
    OMP_NUM_THREADS=1 nice -n 10 python -m wnrl.train "$agent" --resume "runs/evidence/$name" >> "logs/$name.log" 2>&1
  else
    OMP_NUM_THREADS=1 nice -n 10 python -m wnrl.train "$agent" --env Pong --total-steps "$total" --seed "$seed" \
      --checkpoint-every 100000 --logdir runs/evidence --run-name "$name" --progress false "$@" >> "logs/$name.log" 2>&1
  fi
  grep -q "^done:" "logs/$name.log" && python -m wnrl.plot --export "$export" "runs/evidence/$name" >> "logs/$name.log" 2>&1
}

GAMES=MinAtar/Asterix,MinAtar/Breakout,MinAtar/Freeway,MinAtar/Seaquest,MinAtar/SpaceInvaders
minatar() {  # the grid's arguments after the games and the length
  OMP_NUM_THREADS=1 nice -n 15 python -m wnrl.grid --agents a2c --envs "$GAMES" --total-steps 2000000 --jobs 2 "$@"
}

case "${1:-}" in
  pong)  # two streams, one per core
    (
      pong a2c_Pong_layer_s1_2M 1 --norm layer
      pong a2c_Pong_layer_s3_2M 3 --norm layer
      pong a2c_Pong_layer_s2_2M 2 --norm layer
      pong a2c_Pong_none_lr4e-3_s2_2M 2 --norm none --learning-rate 0.004
    ) &
    (
      pong a2c_Pong_wnproject_s1_2M 1 --norm wn --wn-project
      pong a2c_Pong_wnproject_s3_2M 3 --norm wn --wn-project
      pong a2c_Pong_wnproject_s2_2M 2 --norm wn --wn-project
    ) &
    wait
    ;;
  minatar)
    # none at the learning rate whose trunk turns per update as wn's does at 7e-4 (docs/results.md)
    minatar --norms none --seeds 1 --logdir runs/minatar_matched --a2c-args "--learning-rate 0.0055"
    minatar --norms wn,none,layer --seeds 2 --logdir runs/minatar
    # wn at a larger learning rate: does a tuned wn beat the tuned plain net?
    minatar --norms wn --seeds 1 --logdir runs/minatar_wn_lr2e-3 --a2c-args "--learning-rate 0.002"
    minatar --norms none --seeds 2-3 --logdir runs/minatar_matched --a2c-args "--learning-rate 0.0055"
    minatar --norms wn,none,layer --seeds 3 --logdir runs/minatar
    ;;
  next)  # after the pong queue. First: does a plain network at a step between 7e-4 (no learning) and
    # 4e-3 (its trunk died on 2 seeds of 3) learn Pong as reliably as wn? Then the defaults' seeds 1 and 2
    # again (their earlier runs kept figures, not curves), the 5M headline's seed 2 (~3 h of a core) and
    # issue 27's Pong runs (PPO and PQN with their Atari defaults, 3M steps, seed 1: several hours of a
    # core each, estimated). One 2M A2C Pong run takes ~72 min of a core.
    (
      pong a2c_Pong_none_lr2e-3_s1_2M 1 --norm none --learning-rate 0.002
      pong a2c_Pong_none_lr2e-3_s3_2M 3 --norm none --learning-rate 0.002
      pong a2c_Pong_wn_s2_2M 2 --wn-init-norm 0.577  # the A2C Atari default of those runs (1.0 since)
      other a2c a2c_Pong_wn_s2_5M 2 5000000 docs/data/pong_a2c_5M
    ) &
    (
      pong a2c_Pong_none_lr2e-3_s2_2M 2 --norm none --learning-rate 0.002
      pong a2c_Pong_wn_s1_2M 1 --wn-init-norm 0.577
      other pqn pqn_Pong_wn_s1_3M 1 3000000 docs/data/pong_ppo_pqn_3M --norm wn
      other ppo ppo_Pong_wn_s1_3M 1 3000000 docs/data/pong_ppo_pqn_3M
    ) &
    wait
    ;;
  agents27)  # issue 27: PPO and PQN on Pong with their Atari defaults, 3M steps, seed 1, one per core
    # (PQN ~150-260 steps/s beside another run: 3-5 h of a core; rerun to resume a cut run)
    other pqn pqn_Pong_wn_s1_3M 1 3000000 docs/data/pong_ppo_pqn_3M --norm wn &
    other ppo ppo_Pong_wn_s1_3M 1 3000000 docs/data/pong_ppo_pqn_3M &
    wait
    ;;
  pqnnorms)  # issue 27: which norm PQN needs on Pong (the paper needs LayerNorm): layer and none beside
    # pqn_Pong_wn_s1_3M, seed 1 first, then seed 2 of all three; one per core, each resumes if cut
    ( other pqn pqn_Pong_layer_s1_3M 1 3000000 docs/data/pong_pqn_norms_3M --norm layer
      other pqn pqn_Pong_wn_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm wn ) &
    ( other pqn pqn_Pong_none_s1_3M 1 3000000 docs/data/pong_pqn_norms_3M --norm none
      other pqn pqn_Pong_layer_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm layer
      other pqn pqn_Pong_none_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm none ) &
    wait
    ;;
  screen)  # how often does the documented 5M command's trunk die (seed 3's did, at ~130k), and does
    # --wn-project's (it did not on seed 3)? The first 250k steps of seeds 2 and 4-8 each way (~9 min of a
    # core each, alone); `python scripts/collapse_table.py docs/data/pong_a2c_5Msched_screen/*` says which
    # collapsed. Seeds 1 and 3 were read before (docs/results.md).
    (
      for s in 2 4 5 6 7 8; do
        scripts/probe_pong.sh "a2c_Pong_wn_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen
      done
    ) &
    (
      for s in 2 4 5 6 7 8; do
        scripts/probe_pong.sh "a2c_Pong_wnproject_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen --wn-project
      done
    ) &
    wait
    ;;
  screen_then_next)  # a fresh machine (no runs/ left): the screen first, then the next queue's first
    # runs (none at 2e-3 seed 3; the defaults' seed 1 again, for its curves): ~130 min of each core
    (
      for s in 2 4 5 6 7 8; do
        scripts/probe_pong.sh "a2c_Pong_wn_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen
      done
      pong a2c_Pong_none_lr2e-3_s3_2M 3 --norm none --learning-rate 0.002
    ) &
    (
      for s in 2 4 5 6 7 8; do
        scripts/probe_pong.sh "a2c_Pong_wnproject_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen --wn-project
      done
      pong a2c_Pong_wn_s1_2M 1
    ) &
    wait
    ;;
  screen2)  # after screen_then_next's first results (wn+project collapsed on seed 2, where wn did
    # not): is --wn-init-norm 1.0 (turns ~3x less per update; no collapse on seed 3; slower at 2M on seeds 1, 3) the safer
    # default? Its seeds 2, 4, 5 and the defaults' seeds 5-8; then none at 2e-3 seed 3 (2M).
    # A probe already running (from another queue) is waited for: WAIT_PID.
    (
      while [ -n "${WAIT_PID:-}" ] && kill -0 "$WAIT_PID" 2>/dev/null; do sleep 20; done
      for s in 5 6; do
        scripts/probe_pong.sh "a2c_Pong_wn_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen
      done
      pong a2c_Pong_none_lr2e-3_s3_2M 3 --norm none --learning-rate 0.002
    ) &
    (
      for s in 2 4 5; do
        scripts/probe_pong.sh "a2c_Pong_wninit1_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen \
          --wn-init-norm 1.0
      done
      for s in 7 8; do
        scripts/probe_pong.sh "a2c_Pong_wn_s${s}_5Msched" $s 250000 docs/data/pong_a2c_5Msched_screen
      done
    ) &
    wait
    ;;
  init1_s2)  # the third seed of --wn-init-norm 1.0 on the 2M budget (seeds 1 and 3 were run before): the
    # screen found its trunk alive on seeds 2-5 where the 0.577 default's died on 3 and 5 of 1-8
    pong a2c_Pong_wn_init1_s2_2M 2 --wn-init-norm 1.0
    ;;
  after27)  # pqnnorms's seed-2 runs (each resumes if cut), then on the first core the 5M headline as a new
    # user runs it today (`python -m wnrl.train a2c --env Pong --total-steps 5000000 --seed S`: the A2C Atari
    # init norm is 1.0 since 42a02e0), seeds 1-3, ~3 h of a core each (issue 23: what the seeds show)
    # The headline's seed 2 goes to whichever stream is free first (a claim made with mkdir, cleared when
    # the queue starts, so a restarted queue claims it again).
    rm -rf logs/claim_a2c_s2
    seed2() { if mkdir logs/claim_a2c_s2 2>/dev/null; then other a2c a2c_Pong_wn_s2_5M_init1 2 5000000 docs/data/pong_a2c_5M_init1; fi; }
    ( other pqn pqn_Pong_wn_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm wn
      for s in 1 3; do
        other a2c "a2c_Pong_wn_s${s}_5M_init1" $s 5000000 docs/data/pong_a2c_5M_init1
      done
      seed2 ) &
    ( other pqn pqn_Pong_layer_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm layer
      other pqn pqn_Pong_none_s2_3M 2 3000000 docs/data/pong_pqn_norms_3M --norm none
      seed2 ) &
    wait
    ;;
  headline5m)  # the 5M headline's seeds 2 and 3 at once, one per core (issue 23), each resumed if cut
    ( other a2c a2c_Pong_wn_s2_5M_init1 2 5000000 docs/data/pong_a2c_5M_init1 ) &
    ( other a2c a2c_Pong_wn_s3_5M_init1 3 5000000 docs/data/pong_a2c_5M_init1 ) &
    wait
    ;;
  *)
    echo "usage: scripts/evidence_runs.sh pong|minatar|next|screen|screen_then_next|screen2|init1_s2|agents27|pqnnorms|after27|headline5m" >&2
    exit 2
    ;;
esac
