"""The ``cogdsl`` command (:mod:`~cogdsl.cli.command`)."""

from cogdsl.cli.command import build_parser, main

__all__ = ["build_parser", "main"]
