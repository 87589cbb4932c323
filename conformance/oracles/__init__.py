"""The suite's own models of the real tools a bottle drives (independent of
any backend: nothing here imports ``bottle_ref`` or ``bottle_bundle``)."""
