"""The CLI's last guard: an exception no check foresaw is a message and exit status 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogdsl.compiler.pipeline
from cogdsl.cli.command import main

SPEC = Path(__file__).resolve().parent.parent / "specs" / "ntm_copy.yaml"


def _raise(error: Exception):
    def lower(*args: object, **kwargs: object) -> None:
        raise error
    return lower


def test_a_bug_is_an_internal_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COGDSL_DEBUG", raising=False)
    monkeypatch.setattr(cogdsl.compiler.pipeline, "lower", _raise(KeyError("_modules")))
    assert main(["compile", str(SPEC)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cogdsl compile: internal error: KeyError: '_modules'\n")
    assert "COGDSL_DEBUG=1" in err and "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COGDSL_DEBUG", "1")
    monkeypatch.setattr(cogdsl.compiler.pipeline, "lower", _raise(ValueError("shape")))
    assert main(["compile", str(SPEC)]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: you "
                                                                "tried to allocate 68719476736 bytes")])
def test_out_of_memory_is_said_in_words(error: Exception, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COGDSL_DEBUG", raising=False)
    monkeypatch.setattr(cogdsl.compiler.pipeline, "lower", _raise(error))
    assert main(["compile", str(SPEC)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cogdsl compile: error: out of memory (") and "--batch" in err and "Traceback" not in err
