"""bottle_api: the seam between a bottle backend and the conformance suite.

Stdlib and pyyaml only. A backend implements `Backend` and `Bottle`; the
suite (`conformance`) drives it through this package and nothing else.

    spec         BottleSpec and its YAML loader
    host         HostContext: everything read from the host
    plan         Plan: what prepare() computes and launch() consumes
    runner       Runner, SubprocessRunner, RecordingRunner
    backend      the Backend and Bottle ABCs
    registry     backends by entry point (``bottle.backends``) or import path
    conventions  ports, daemon names, guest paths and users, label key
"""

from .backend import Backend, Bottle, Progress
from .host import HostContext
from .plan import Plan
from .registry import BackendNotFound, available_backends, get_backend
from .runner import Call, Completed, RecordingRunner, Runner, SubprocessRunner
from .spec import BottleSpec, SpecError

__all__ = ["Backend", "BackendNotFound", "BottleSpec", "Bottle", "Call", "Completed",
           "HostContext", "Plan", "Progress", "RecordingRunner", "Runner", "SpecError",
           "SubprocessRunner", "available_backends", "get_backend"]
__version__ = "0.2.0"
