"""Benchmarks: ``python -m bench`` runs every module listed in :mod:`bench.__main__`
(``BENCHES``) and prints a summary table; ``python -m bench.<module>`` runs one.

Contract for a bench module: a ``main(argv: list[str] | None = None)`` that prints its
own figures and returns them as a ``dict`` (or an exit code as an ``int``; non-zero means
the bench failed its own check). ``HEADLINE = ("key", ...)`` optionally names the figures
of that dict the summary table shows (default: the first three numbers). Speed is measured
here, never in tests.
"""
