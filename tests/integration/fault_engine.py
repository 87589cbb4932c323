"""A fake docker engine CLI for fault tests (issue 17): run as ``docker``.

Engine objects (networks, containers) are files under ``$FAKE_ENGINE/objects``
holding their label; the commands `bottle-ref up`/`down` and the docker
backend run are answered the way docker 20.10 answers them (the messages of
missing objects included: checked against the real engine on this machine).
Calls are numbered in the order they arrive (several may be in flight:
``up`` overlaps independent commands). Faults: ``FAKE_KILL_AT=N`` SIGKILLs
the caller on the Nth call, and the call
then completes ``FAKE_LAG`` seconds after it died (a create in flight
outlives the killed ``up``); ``FAKE_HANG_AT=N`` hangs the Nth call;
``FAKE_DOWN=1`` answers every call like an unreachable engine.
"""
import fcntl, json, os, signal, sys, time
from pathlib import Path

root = Path(os.environ["FAKE_ENGINE"])
argv = sys.argv[1:]
counter = root / "calls"
# `bottle-ref up` overlaps independent commands: number the calls under a lock.
with open(root / "calls.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    with open(root / "log", "a") as f:
        f.write(f"{n} {' '.join(argv)[:200]}\n")
if os.environ.get("FAKE_DOWN"):
    print("Cannot connect to the Docker daemon at unix:///nonexistent.sock. "
          "Is the docker daemon running?", file=sys.stderr)
    sys.exit(1)
kill_at = int(os.environ.get("FAKE_KILL_AT", "0"))
if n == kill_at:
    os.kill(os.getppid(), signal.SIGKILL)   # the caller dies while we are in flight
    time.sleep(float(os.environ.get("FAKE_LAG", "0.3")))  # ...and we finish after it
hang_at = int(os.environ.get("FAKE_HANG_AT", "0"))
if n == hang_at:
    time.sleep(3600)

objs = root / "objects"
objs.mkdir(exist_ok=True)


def opt(flag):
    return argv[argv.index(flag) + 1] if flag in argv else ""


def make(kind, name, label):
    (objs / f"{kind}.{name}").write_text(label)


def have(kind):
    return {p.name.split(".", 1)[1]: p.read_text() for p in objs.glob(f"{kind}.*")}


def labelled(kind):
    want = opt("--filter").removeprefix("label=")
    return [n for n, lab in have(kind).items() if lab == want]


def remove(kind, names, missing_msg, missing_rc):
    rc = 0
    for name in names:
        p = objs / f"{kind}.{name}"
        if p.exists():
            p.unlink()
            print(name)
        else:
            print(missing_msg.format(name), file=sys.stderr)
            rc = missing_rc
    sys.exit(rc)


def inspect(kind, names, missing_msg):
    rc = 0
    for name in names:
        if (objs / f"{kind}.{name}").exists():
            print(("/" if kind == "ctr" else "") + name)
        else:
            print(missing_msg.format(name), file=sys.stderr)
            rc = 1
    sys.exit(rc)


def positional(args):
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("--format", "-f", "--filter", "--time"):
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


if argv[:2] == ["network", "create"]:
    make("net", argv[-1], opt("--label"))
elif argv[:2] == ["network", "rm"]:
    remove("net", argv[2:], "Error response from daemon: network {} not found", 1)
elif argv[:2] == ["network", "inspect"]:
    inspect("net", positional(argv[2:]), "Error response from daemon: network {} not found")
elif argv[:2] == ["network", "ls"]:
    print("\n".join(labelled("net")))
elif argv[:1] in (["create"], ["run"]):
    make("ctr", opt("--name"), opt("--label"))
    if argv[0] == "create":
        print("f" * 64)
elif argv[:1] == ["rm"]:
    remove("ctr", [a for a in argv[1:] if not a.startswith("-")],
           "Error response from daemon: No such container: {}", 0)
elif argv[:1] == ["inspect"]:
    inspect("ctr", positional(argv[1:]), "Error: No such object: {}")
elif argv[:1] == ["ps"]:
    print("\n".join(labelled("ctr")))
elif argv[:1] == ["exec"]:
    print("Updating certificates in /etc/ssl/certs...\n1 added, 0 removed; done.")
elif argv[:1] == ["info"]:
    print("20.10.24")
sys.exit(0)
