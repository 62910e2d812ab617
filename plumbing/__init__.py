"""Plumbing every app shares: failure classes, HTTP with limits, decoding and validating untrusted input.

Plain Python (Django settings are read lazily, at call time): ``life``,
``l10n`` and ``worker`` build on it, and it imports none of them.
"""
