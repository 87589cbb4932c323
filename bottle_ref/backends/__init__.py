"""The reference backends, ``docker`` and ``smolmachines``.

Each implements the seam in `bottle_api.backend`; both are registered in
the ``bottle.backends`` entry-point group (see `bottle_api.registry`).
"""
