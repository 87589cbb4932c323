"""The live tier's harness: what a live probe needs besides the backend.

- `engine`: the docker CLI, bounded, for the harness's own fixtures;
- `resources`: tracking and guaranteed removal of everything the harness makes;
- `canary`: TCP listeners on host loopback (LIVE-LOOPBACK) and on every host
  address, 0.0.0.0 and :: (LIVE-HOST), and the host's own addresses;
- `tls` and `upstream`: the test upstream ("the internet" is ours);
- `probes`: bounded probes run inside the guest through `Bottle.exec`
  (TCP, HTTP, TLS, the whole-guest secret scan, routes and mounts read);
- `harness`: scenarios, shared launched bottles, staging.

Traffic goes only to loopback, to the host's own addresses (the canary),
and to containers and networks of the bottle or the harness. Never to an
outside address or name: the guest's routes are read, never dialled out.
"""
