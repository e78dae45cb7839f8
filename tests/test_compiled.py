"""--compile: a compiler failure costs one warning, never the run."""

import pytest
import torch
import torch._inductor.exc

from wnrl.compiled import Compiled


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, capsys):
    def broken_compile(fn, **kw):
        def fail(*args):
            raise torch._inductor.exc.InductorError(RuntimeError("no C++ compiler found\nlong details"), None)

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    f = Compiled(lambda x: x + 1, "default", "the update")
    assert f(1) == 2 and f(2) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "warning: --compile default failed for the update (InductorError: RuntimeError: no C++ compiler found); "
        "running it uncompiled (--compile off hides this)"
    ]
    assert not f.compiled


def test_an_error_of_the_code_itself_is_not_taken_for_a_compiler_failure(monkeypatch, capsys):
    """Under torchrun a collective that fails because a peer died used to print "--compile failed …
    running it uncompiled" and wait another full timeout eagerly before the real error."""

    def compile_that_runs(fn, **kw):
        def run(*args):
            raise RuntimeError("[gloo] Connection closed by peer")

        return run

    monkeypatch.setattr(torch, "compile", compile_that_runs)
    calls = []
    f = Compiled(lambda x: calls.append(x), "default", "the update")
    with pytest.raises(RuntimeError, match="Connection closed by peer"):
        f(1)
    assert calls == [] and capsys.readouterr().err == ""  # not retried eagerly, no warning
