"""Mercurial extensions loaded into every ``hg`` the worker runs (see ``life.hg.clone.run_hg``).

Each file is loaded by path (``--config extensions.<name>=<file>``) into the
hg process, so it imports only Mercurial and the standard library.
"""
