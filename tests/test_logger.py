"""The console progress: an honest ETA."""

from wnrl.logger import Logger


def test_eta_waits_for_learning_then_uses_the_last_minute(tmp_path):
    log = Logger(tmp_path, {}, total_steps=100_000, progress=False, eta_from=10_000)
    assert log.eta(5_000, now=0.0) == "after learning starts"  # random play: ~10× faster than learning
    assert log.eta(10_000, now=100.0) == "measuring"
    assert log.eta(11_000, now=110.0) == "0:14:50"  # 100 steps/s, 89,000 steps left
    # throughput drops to 10 steps/s: a minute later only the last minute counts
    for k in range(1, 13):
        eta = log.eta(11_000 + 50 * k, now=110.0 + 5 * k)
    assert eta == "2:27:20"  # 10 steps/s, 88,400 steps left
    assert log.eta(100_000, now=300.0) == "0:00:00"
    log.close()


def test_a_resumed_runs_event_file_is_read_after_the_killed_runs_within_the_same_second(tmp_path):
    """TensorBoard reads a run's event files in name order (seconds, host, pid): a resume that starts
    in the second its killed run started must still be read last, or its steps come first."""
    import time

    from tests.helpers import scalars

    first = Logger(tmp_path, {}, total_steps=10, progress=False)
    for step in (1, 2, 3):
        first.scalars({"charts/x": step}, step)
    first.close()
    (old,) = tmp_path.glob("events.out.tfevents.*")
    # the killed run as another process would have named it, stamped a second ahead of now: without
    # the wait, the resumed file (this second, a smaller pid) would sort before it
    parts = old.name.split(".")
    parts[3], parts[5] = str(int(time.time()) + 1), "99999999"
    old.rename(tmp_path / ".".join(parts))
    resumed = Logger(tmp_path, {}, total_steps=10, start_step=2, progress=False)
    for step in (3, 4, 5):
        resumed.scalars({"charts/x": step}, step)
    resumed.close()
    assert sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))[0] == ".".join(parts)
    assert [s for s, _ in scalars(tmp_path)["charts/x"]] == [1, 2, 3, 4, 5]  # step 3 purged from the old run


def test_the_config_table_is_written_at_the_start_and_at_each_resume(tmp_path):
    """A resume may change --total-steps or the learning rate: TensorBoard's config text shows both tables."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Logger(tmp_path, {"total_steps": 100}, total_steps=100, progress=False).close()
    Logger(tmp_path, {"total_steps": 300}, total_steps=300, start_step=100, progress=False).close()
    ea = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    ea.Reload()
    texts = [(e.step, e.tensor_proto.string_val[0].decode()) for e in ea.Tensors("config/text_summary")]
    assert [s for s, _ in texts] == [0, 100]
    assert "| total_steps | 100 |" in texts[0][1] and "| total_steps | 300 |" in texts[1][1]
