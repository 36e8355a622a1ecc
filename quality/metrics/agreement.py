"""Placeholder: filled in by its module's author."""

__all__: list[str] = []
