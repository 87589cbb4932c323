"""bottle_ref: the reference implementation of the bottle contract.

Two backends, ``docker`` and ``smolmachines``, behind one seam
(`bottle_api.backend`). Every external command goes through a
`bottle_api.runner.Runner`.
"""

__version__ = "0.1.0"
