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
