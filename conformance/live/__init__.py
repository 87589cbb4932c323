"""The live tier's harness: what a live probe needs besides the backend.

- `engine`: the docker CLI, bounded, for the harness's own fixtures;
- `resources`: tracking and guaranteed removal of everything the harness makes;
- `canary`: a TCP listener on host loopback (LIVE-LOOPBACK);
- `tls` and `upstream`: the test upstream ("the internet" is ours);
- `probes`: bounded probes run inside the guest through `Bottle.exec`;
- `harness`: scenarios, shared launched bottles, staging.

Traffic goes only to loopback and to containers and networks of the
bottle or the harness. Never to an outside address or name.
"""
