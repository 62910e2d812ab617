"""What every command that writes clones does first."""

from life import storage


def prepare_storage():
    """REPOSITORY_BASE usable, and what killed workers left removed; else stop the command with one line."""
    try:
        storage.prepare()
    except storage.StorageError as error:
        raise SystemExit(f"configuration: {error}") from None
