"""Backends and their registry (the ``bottle.backends`` entry-point group)."""
