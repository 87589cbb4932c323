"""A recorded launch: every command a backend runs, without an engine.

`record` drives one bottle through the whole seam with a recording runner
(``prepare -> script -> launch -> agent_argv(tty=False/True) -> close``) and
returns a `Recording`: the plan, the runner, each phase's calls, the agent
argvs, what launch reported through ``progress``, and the exception, if any.
It never raises for a backend failure; the caller decides what a failure means.

    rec = record(backend, SCENARIOS["claude-routes"], tmp=tmp_path)
    assert rec.error is None, rec.describe_error()
    rec.runs("launch")           # argv tuples of the launch phase
    rec.text()                   # normalised snapshot text (no tmp paths, no secrets)

While recording, ``time.sleep`` is replaced (in ``time`` and in the
backend's own modules) by a recorder: a backend that waits with a fixed
sleep instead of ``runner.sleep`` shows up as a ``time.sleep`` event
(LAUNCH-READY) and costs no wall time.

`recording.argv` reads recordings the way a backend-agnostic
test must: guest commands, user framing, published ports, created and
removed resources. It knows docker/podman/nerdctl and smolvm argv shapes and
the bundle interface (DESIGN "Bundle image interface"); nothing else.

One module per subject; this package re-exports their public names.
"""

from .tracing import (  # noqa: F401
    AGENT_ARGS,
    BACKEND_PKG,
    DIRECT_SLEEP,
    HOME,
    MAX_EVENTS,
    PHASES,
    PKG,
    PYTHON,
    RunawayLaunch,
    SECRET,
    STATE,
    TMP,
    TracingRunner,
    reply_when,
)
from .sleeps import (  # noqa: F401
    catching_direct_sleeps,
)
from .normalise import (  # noqa: F401
    Normaliser,
)
from .recorder import (  # noqa: F401
    Recorder,
    Recording,
    record,
)
from .render import (  # noqa: F401
    _token,
    render,
)
from .argv import (  # noqa: F401
    BUNDLE_DAEMONS,
    ENGINES,
    Publish,
    Resource,
    contains_seq,
    created_resource,
    engine_topology,
    env_assignments,
    guest_target,
    is_guest_copy,
    is_guest_exec,
    mentions,
    mount_pairs,
    parse_publish,
    prog,
    read,
    publish_all_flags,
    publish_values,
    removed_resources,
    subcommand,
)

__all__ = [
    "AGENT_ARGS",
    "BACKEND_PKG",
    "BUNDLE_DAEMONS",
    "DIRECT_SLEEP",
    "ENGINES",
    "HOME",
    "MAX_EVENTS",
    "Normaliser",
    "PHASES",
    "PKG",
    "PYTHON",
    "Publish",
    "Recorder",
    "Recording",
    "Resource",
    "RunawayLaunch",
    "SECRET",
    "STATE",
    "TMP",
    "TracingRunner",
    "catching_direct_sleeps",
    "contains_seq",
    "created_resource",
    "engine_topology",
    "env_assignments",
    "guest_target",
    "is_guest_copy",
    "is_guest_exec",
    "mentions",
    "mount_pairs",
    "parse_publish",
    "prog",
    "read",
    "publish_all_flags",
    "publish_values",
    "record",
    "removed_resources",
    "render",
    "reply_when",
    "subcommand",
]
