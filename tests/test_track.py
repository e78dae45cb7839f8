"""--track: the run in Weights & Biases' offline mode (no network), and the line without the extra."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from wnrl import train as train_cli


def wandb_records(run_dir: Path):
    """The records of a W&B offline run file (``run-<id>.wandb``): wandb's LevelDB-style log of protobuf
    records, in 32 KiB blocks of chunks (checksum, length, type: 1 whole, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = run_dir.read_bytes()
    assert data[:4] == b":W&B"
    block, header, pos, parts = 32768, 7, 7, b""
    while pos + header <= len(data):
        if block - pos % block < header:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + header])
        parts += data[pos + header : pos + header + length]
        pos += header + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def test_an_offline_tracked_run_holds_the_config_the_scalars_and_the_last_video(tmp_path, monkeypatch, small_catch):
    pytest.importorskip("wandb")
    import wnrl

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "wandb_dir").mkdir()
    run = wnrl.learn(
        "a2c", "Catch", total_steps=640, num_envs=8, init_rollouts=1, log_every=160, eval_every=320, eval_episodes=2,
        eval_video=True, track=True, wandb_project="wnrl-test", logdir=str(tmp_path / "runs"), progress=False,
    )  # fmt: skip
    (offline,) = (tmp_path / "wandb_dir" / "wandb").glob("offline-run-*/run-*.wandb")
    deadline = time.monotonic() + 60  # wandb's service process writes the file: until the run's exit record
    while not any(r.WhichOneof("record_type") == "exit" for r in wandb_records(offline)):
        assert time.monotonic() < deadline, "the offline run has no exit record"
        time.sleep(0.1)
    run_id = (run.run_dir / "wandb-id").read_text().strip()
    assert offline.name == f"run-{run_id}.wandb"
    records = list(wandb_records(offline))
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (meta.project, meta.display_name) == ("wnrl-test", run.run_dir.name)
    config = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in meta.config.update}
    assert config["total_steps"] == 640 and config["agent"] == "a2c"
    assert config["env"] == "Catch" and config["eval_every"] == 320
    history = []
    for r in records:
        if r.WhichOneof("record_type") == "history":
            # keys come as nested keys: ["charts/episodic_return"], a video's ["eval/video", "path"]
            history.append(
                {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            )
    evals = [(h["global_step"], h["eval/episodic_return"]) for h in history if "eval/episodic_return" in h]
    assert [s for s, _ in evals] == [320, 640]
    assert evals[-1][1] == pytest.approx(run.summary["eval"]["last"])
    games = [h for h in history if "charts/episodic_return" in h]
    assert len(games) == run.summary["episodes"] and all("global_step" in h for h in games)
    assert {"charts/SPS", "losses/value_loss"} <= {k for h in history for k in h}
    # the last evaluation's video, as W&B media in the offline run
    (video,) = [h for h in history if "eval/video.path" in h]
    assert video["eval/video._type"] == "video-file" and video["eval/video.path"].endswith(".mp4")
    uploaded = offline.parent / "files" / video["eval/video.path"]
    assert uploaded.read_bytes() == (run.run_dir / "videos" / "eval_step_000000000640.mp4").read_bytes()


def test_track_without_wandb_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    code = train_cli.main(["a2c", "--env", "CartPole-v1", "--track", "--logdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install 'wnrl[track]'" in err
    assert not any(tmp_path.iterdir())


def test_a_run_that_w_and_b_refuses_is_one_line_and_leaves_no_run_directory(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    import wnrl

    def refuse(**kwargs):
        raise RuntimeError("api_key not configured (no-tty). call wandb.login(key=[your_api_key])")

    monkeypatch.setattr(wandb, "init", refuse)
    with pytest.raises(ValueError, match=r"--track: W&B did not start the run \(api_key not configured.*wandb login"):
        wnrl.learn("a2c", "CartPole-v1", track=True, logdir=str(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())
