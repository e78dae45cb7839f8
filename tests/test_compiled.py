"""--compile: a compiler failure costs one warning, never the run."""

import torch

from wnrl.compiled import Compiled


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, capsys):
    def broken_compile(fn, **kw):
        def fail(*args):
            raise RuntimeError("no C++ compiler found\nlong details")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    f = Compiled(lambda x: x + 1, "default", "the update")
    assert f(1) == 2 and f(2) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: --compile default failed for the update (RuntimeError: no C++ compiler found); "
        "running it uncompiled (--compile off hides this)"
    ]
    assert not f.compiled
