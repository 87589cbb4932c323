"""The suite's argv library (`conformance.argv`): grammars, parser, framing
oracle and the static argv checks, against tables of real-semantics cases.

Each smolvm row cites the smolvm source it encodes (smol-machines/smolvm,
tag v1.9.3 unless said otherwise; the rows were compared across v1.8.0 ..
v1.9.3); each docker row cites docker/cli (commit 28f756087e, v29.7.2+16).
"""

from __future__ import annotations

import shlex

import pytest

from conformance.argv import ArgvError, UnknownTool, agent_exec, framing_problem, parse
from conformance.argv import checks, docker, smolvm
from conformance.argv.framing import parse_any, walk


def A(text: str) -> list[str]:
    return shlex.split(text)


def at_agent(argv: list[str]) -> int:
    found = agent_exec(argv)
    assert found is not None, argv
    return found.at


# -- smolvm grammar, one fact per row ------------------------------------------------

SMOLVM_OK = [
    # (argv, path, a check on the invocation, source)
    ("smolvm --version", (), lambda i: i.has("version"), "src/main.rs:18 #[command(version)]"),
    ("smolvm -V", (), lambda i: i.has("version"), "src/main.rs:18 (clap -V)"),
    ("smolvm machine create -n m --from x.smolmachine --net --allow-cidr 127.77.0.1/32 -- sleep 1",
     ("machine", "create"), lambda i: i.command == ("sleep", "1") and i.last("name") == "m",
     "machine.rs:2926 -n/--name; 3099 last = true"),
    ("smolvm machine create --name m -e A=1 -e B=2", ("machine", "create"),
     lambda i: i.values("env") == ["A=1", "B=2"], "machine.rs:3046 -e repeatable"),
    ("smolvm machine exec --name m -e HOME=/home/node -i -t -- runuser -u node -- claude",
     ("machine", "exec"), lambda i: i.command[:3] == ("runuser", "-u", "node"),
     "machine.rs:2628 trailing_var_arg; 2633 --name"),
    ("smolvm machine exec --name m true", ("machine", "exec"),
     lambda i: i.command == ("true",), "machine.rs:2628 first positional starts the command"),
    ("smolvm machine exec --name m -- sh -c 'echo -n x'", ("machine", "exec"),
     lambda i: i.command == ("sh", "-c", "echo -n x"), "machine.rs:2628"),
    ("smolvm machine start -n m", ("machine", "start"), lambda i: i.last("name") == "m",
     "machine.rs:3593"),
    ("smolvm machine stop --name m", ("machine", "stop"), lambda i: i.last("name") == "m",
     "machine.rs:3953"),
    ("smolvm machine delete -n m -f", ("machine", "delete"), lambda i: i.has("force"),
     "machine.rs:3977, 3981"),
    ("smolvm machine rm -n m", ("machine", "delete"), lambda i: True,
     "machine.rs:344 visible_alias rm"),
    ("smolvm machine cp ./f m:/tmp/f", ("machine", "cp"),
     lambda i: i.positionals == ("./f", "m:/tmp/f"), "machine.rs:4888-4893"),
    ("smolvm machine cp --mode 600 --uid 1000 ./f m:/tmp/f", ("machine", "cp"),
     lambda i: i.last("mode") == "600", "machine.rs:4897-4905 (since v1.9.0)"),
    ("smolvm pack create -I img:latest -o out", ("pack", "create"),
     lambda i: i.last("output") == "out", "pack.rs:88, 100"),
    ("smolvm machine ls --json", ("machine", "ls"), lambda i: i.has("json"), "machine.rs:4113"),
]

SMOLVM_BAD = [
    ("smolvm machine create m --from x.smolmachine", "unexpected positional",
     "machine.rs:2926 (name is a flag since v1.0.2; last = true at 3099)"),
    ("smolvm machine create -n m sleep 1", "unexpected positional", "machine.rs:3099 needs --"),
    ("smolvm machine delete m", "unexpected positional", "machine.rs:3977 (a flag, not positional)"),
    ("smolvm machine delete -f", "required flag --name", "machine.rs:3977 name: String"),
    ("smolvm machine exec -n m -- true", "unknown flag -n",
     "machine.rs:2632 #[arg(long)]: exec has no -n"),
    ("smolvm machine exec --name m", "no command given", "machine.rs:2628 required = true"),
    ("smolvm machine exec --name -- true", "needs a value", "clap: a flag-like token is no value"),
    ("smolvm machine cp ./f", "at least 2", "machine.rs:4888-4893 SRC and DST"),
    ("smolvm pack create alpine:latest -o out", "unexpected positional",
     "pack.rs:79-165 no positional image field"),
    ("smolvm pack create -I img", "required flag --output", "pack.rs:100 output: PathBuf"),
    ("smolvm machine create -n m --privileged", "unknown flag --privileged", "machine.rs:2923"),
    ("smolvm machine frobnicate", "unknown subcommand", "machine.rs:321 MachineCmd"),
]


@pytest.mark.parametrize(("text", "path", "check", "source"), SMOLVM_OK,
                         ids=[r[0][:60] for r in SMOLVM_OK])
def test_smolvm_accepts(text, path, check, source):
    inv = parse(A(text))
    assert inv.path == path, source
    assert check(inv), f"{text}: {inv} ({source})"


@pytest.mark.parametrize(("text", "why", "source"), SMOLVM_BAD, ids=[r[0][:60] for r in SMOLVM_BAD])
def test_smolvm_refuses(text, why, source):
    with pytest.raises(ArgvError, match=why):
        parse(A(text))


def test_smolvm_versions_differ_where_the_source_does():
    # --network on create exists since v1.8.3 (machine.rs:2997); cp --mode since v1.9.0.
    _, versions = parse_any(A("smolvm machine create -n m --network n1"))
    assert versions == ("1.8.3", "1.9.0", "1.9.1", "1.9.2", "1.9.3")
    _, versions = parse_any(A("smolvm machine cp --mode 600 f m:/f"))
    assert versions == ("1.9.0", "1.9.1", "1.9.2", "1.9.3")
    _, versions = parse_any(A("smolvm machine stop -n m"))
    assert versions == smolvm.SUPPORTED


def test_smolvm_rows_cite_source_and_version():
    for path, rows in smolvm.ROWS.items():
        for row in rows:
            assert row.source.startswith(("src/cli/machine.rs:", "src/cli/pack.rs:",
                                          "src/cli/proxy_opts.rs:")), (path, row)
            assert row.since in smolvm.SUPPORTED, (path, row)


def test_smolvm_helpers():
    assert smolvm.sidecar_of("/tmp/out") == "/tmp/out.smolmachine"  # pack.rs:189-203
    assert smolvm.split_cp_arg("m:/a:b") == ("m", "/a:b")  # machine.rs:4926 split_once
    assert smolvm.split_cp_arg("/local") == (None, "/local")
    assert smolvm.parse_version("smolvm 1.9.3\n") == "1.9.3"
    assert smolvm.is_version_check(["smolvm", "--version"])


# -- docker family --------------------------------------------------------------------

DOCKER_OK = [
    ("docker exec -u node -e HOME=/home/node C claude -p", lambda i: (
        i.positionals == ("C",) and i.command == ("claude", "-p")), "exec.go:66 SetInterspersed(false)"),
    ("docker exec -e -u node C true", lambda i: (
        i.values("env") == ["-u"] and i.positionals == ("node",) and i.command == ("C", "true")),
     "exec.go:74 -e is a value flag: pflag takes the next token whatever it is"),
    ("docker exec -itu node C sh", lambda i: i.last("user") == "node" and i.has("tty"),
     "exec.go:69-72 short cluster ending in a value flag"),
    ("docker exec -unode C sh", lambda i: i.last("user") == "node", "pflag -uVALUE"),
    ("docker exec --user=node:node C sh", lambda i: i.last("user") == "node:node", "--flag=value"),
    ("docker run -d --name b --network n -p 127.0.0.1::9099 img cmd -p 1", lambda i: (
        i.positionals == ("img",) and i.values("publish") == ["127.0.0.1::9099"]
        and i.command == ("cmd", "-p", "1")), "run.go:57 options end at the image"),
    ("docker container exec C true", lambda i: i.path == ("exec",), "container exec alias"),
    ("docker network create --internal -o com.docker.network.bridge.inhibit_ipv4=true --label "
     "k=v n", lambda i: i.has("internal") and i.positionals == ("n",), "network/create.go:77-80"),
    ("docker network connect --alias pipelock n c", lambda i: i.positionals == ("n", "c"),
     "network/connect.go:39 ExactArgs(2), 59 --alias"),
    ("docker image inspect --format {{.Id}} img", lambda i: i.last("format") == "{{.Id}}",
     "image/inspect.go:45"),
    ("docker rm -f a b", lambda i: i.positionals == ("a", "b"), "container/rm.go:59"),
    ("docker port c 9099/tcp", lambda i: i.positionals == ("c", "9099/tcp"), "container/port.go:32"),
    ("docker --context x run img", lambda i: i.path == ("run",),
     "cli/flags/options.go:131 global --context"),
    ("podman run --network n:alias=x,ip=10.0.0.2 img", lambda i: i.values("network") == [
        "n:alias=x,ip=10.0.0.2"], "podman: docker's vocabulary"),
    ("docker run --net=host img", lambda i: i.values("net") == ["host"], "opts.go:244 --net"),
    ("docker network prune -f --filter label=k", lambda i: i.path == ("network", "prune")
     and i.values("filter") == ["label=k"], "network/prune.go:53-54"),
]

DOCKER_BAD = [
    ("docker exec -u node C", "no command given", "exec.go:49 RequiresMinArgs(2)"),
    ("docker exec -u", "needs a value", "exec.go:72 -u takes a value"),
    ("docker network create --internal --label n", "at least 1 positional",
     "network/create.go:59 ExactArgs(1): --label swallowed the name"),
    ("docker run --frobnicate img", "unknown flag --frobnicate", "container/opts.go"),
    ("docker exec -Z C true", "unknown flag -Z", "exec.go"),
    ("docker network connect n", "at least 2", "network/connect.go:39"),
    ("docker frob", "unknown subcommand", "cli/command/commands"),
]


@pytest.mark.parametrize(("text", "check", "source"), DOCKER_OK, ids=[r[0][:60] for r in DOCKER_OK])
def test_docker_accepts(text, check, source):
    inv = parse(A(text))
    assert check(inv), f"{text}: {inv} ({source})"


@pytest.mark.parametrize(("text", "why", "source"), DOCKER_BAD, ids=[r[0][:60] for r in DOCKER_BAD])
def test_docker_refuses(text, why, source):
    with pytest.raises(ArgvError, match=why):
        parse(A(text))


@pytest.mark.parametrize(("value", "tool", "name"), [
    ("n1", "docker", "n1"),
    ("name=n1,alias=x", "docker", "n1"),       # opts/network.go:43 long syntax
    ("n1:alias=x,ip=10.0.0.2", "podman", "n1"),  # podman NET:options
    ("n1:alias=x", "nerdctl", "n1"),
    ("host", "docker", "host"),
    ("container:abc", "podman", "container:abc"),
])
def test_network_values(value, tool, name):
    assert docker.parse_network(value, tool).name == name


def test_user_and_image_values():
    assert docker.user_name("node:node") == "node"
    assert docker.user_name("node") == "node"
    assert docker.image_pinned("sha256:" + "a" * 64)
    assert docker.image_pinned("claude-bottle@sha256:" + "b" * 64)
    assert not docker.image_pinned("claude-bottle:latest")
    assert docker.image_matches("reg.io:5000/claude-bottle:1", "reg.io:5000/claude-bottle:latest")
    assert not docker.image_matches("sha256:" + "a" * 64, "claude-bottle:latest")


def test_docker_rows_cite_docker_cli():
    from conformance.argv import docker_table as T
    for path, rows in T.COMMAND_FLAGS.items():
        for long, short, takes, source in rows:
            assert source.startswith("cli/command/") and ":" in source, (path, long)
    # spot checks against the source lines they cite
    exec_flags = {r[0]: r for r in T.COMMAND_FLAGS[("exec",)]}
    assert exec_flags["user"][1:3] == ("u", True)          # exec.go:72 StringVarP
    assert exec_flags["privileged"][1:3] == ("", False)    # exec.go:73 BoolVar
    run_flags = {r[0]: r for r in T.COMMAND_FLAGS[("run",)]}
    assert run_flags["publish-all"][1:3] == ("P", False)   # opts.go:242
    assert run_flags["use-api-socket"][2] is False         # run.go:66


def test_unknown_tool_is_not_guessed():
    with pytest.raises(UnknownTool):
        parse(A("firecracker --api-sock /x"))
    with pytest.raises(UnknownTool):
        framing_problem(A("sandboxctl exec box claude"), 3)


# -- the node-framing oracle ------------------------------------------------------------

FRAMING = [
    # (argv, None if node-framed else a fragment of the problem)
    ("docker exec -u node -e HOME=/home/node C claude", None),
    ("docker exec --user node:node -e HOME=/home/node C claude", None),  # node:GROUP is node
    ("docker exec --user=node --env=HOME=/home/node C claude", None),
    ("docker exec -unode -eHOME=/home/node C claude", None),
    ("docker exec -u node -u root -e HOME=/home/node C claude", "root"),  # last -u wins
    ("docker exec -u root -u node -e HOME=/home/node C claude", None),
    ("docker exec -u node C claude", "HOME=/home/node is not set"),
    ("docker exec -u node -e HOME C claude", "HOME=<host value>"),  # bare -e copies the host's
    ("docker exec -u node -e HOME=/root C claude", "HOME=/root"),
    ("docker exec -e HOME=/home/node C claude", "no switch to node"),
    ("docker exec -u node -e HOME=/home/node C env HOME=/root claude", "HOME=/root"),
    ("docker exec -u root -e HOME=/root C env HOME=/home/node USER=node runuser -u node -- claude",
     None),
    ("smolvm machine exec --name m -e HOME=/home/node -e USER=node -- runuser -u node -- claude",
     None),
    ("smolvm machine exec --name m -e HOME=/home/node -- runuser -u node -- claude", "USER"),
    ("smolvm machine exec --name m -e USER=node -- runuser -u node -- claude", "HOME"),
    ("smolvm machine exec --name m -e HOME=/home/node -e USER=node -- claude", "root"),
    ("smolvm machine exec --name m -e HOME=/home/node -e USER=node -- runuser -u node -- "
     "runuser -u root -- claude", "root"),  # nested runuser: the last wins
    ("smolvm machine exec --name m -- runuser -l node -c claude", "not read"),
    ("smolvm machine exec --name m -e HOME=/home/node -e USER=node -- env -i runuser -u node -- "
     "claude", "HOME"),  # env -i empties the environment
    ("python3 /abs/pty_resize.py m -- smolvm machine exec --name m -e HOME=/home/node -e USER=node "
     "-i -t -- runuser -u node -- claude", None),  # behind a wrapper
]


@pytest.mark.parametrize(("text", "want"), FRAMING, ids=[r[0][:70] for r in FRAMING])
def test_node_framing(text, want):
    argv = A(text)
    got = framing_problem(argv, at_agent(argv) if want != "not read" else len(argv) - 1)
    if want is None:
        assert got is None, got
    else:
        assert got is not None and want in got, got


def test_framing_of_a_command_inside_sh_c_is_the_framing_before_sh():
    argv = A("docker exec -u node -e HOME=/home/node C sh -c 'git config --global user.name x'")
    assert framing_problem(argv, len(argv) - 1) is None
    f = walk(argv, len(argv) - 1)
    assert (f.user, f.home) == ("node", "/home/node")


def test_framing_reports_an_exec_the_tool_refuses():
    argv = A("smolvm machine exec -n m -- runuser -u node -- git config --global user.name x")
    assert "does not parse" in framing_problem(argv, argv.index("git"))


def test_agent_found_by_role_not_by_image():
    assert agent_exec(A("docker exec -u node C claude --print x")).at == 5
    assert agent_exec(A("docker exec -u node C /usr/local/bin/codex exec x")).at == 5
    assert agent_exec(A("docker exec -u node claude-bottle true")) is None  # a container named claude
    assert agent_exec(A("docker run claude-bottle:latest claude")) is None  # not an exec
    assert agent_exec(A("smolvm machine exec --name m -- runuser -u node -- claude")).at == 10


# -- the static checks, on small recorded fixtures ----------------------------------------

PUB = "127.77.1.2"
SOCK = "--mount-socket /tmp/b-1/egress.sock:/run/bottle/egress.sock"


class _Plan:
    """The two plan fields SMOLVM-SOCKETS reads."""

    def __init__(self, routed=True, daemons=("egress", "pipelock")):
        self.routed, self.daemons = routed, daemons


def smol_launch(*, version=True, create=None, cp_src="/s/ca.pem", from_="/t/x.smolmachine",
                pack="-o /t/x") -> list[list[str]]:
    runs = []
    if version:
        runs.append(A("smolvm --version"))
    runs.append(A(f"smolvm pack create -I img {pack}"))
    runs.append(A("docker run -d --name b --network n --mount type=bind,source=/tmp/b-1,"
                  "target=/run/bottle/sockets bundle bottle-bundle egress,pipelock"))
    runs.append(A(create or f"smolvm machine create -n m --from {from_} {SOCK} "
                             "-e HOME=/home/node"))
    runs.append(A("smolvm machine start -n m"))
    runs.append(A(f"smolvm machine cp {cp_src} m:/usr/local/share/ca-certificates/x.crt"))
    runs.append(A("smolvm machine exec --name m -e HOME=/home/node -e USER=node -- "
                  "runuser -u node -- claude --print x"))
    runs.append(A("smolvm machine delete -n m -f"))
    return runs


def test_smolvm_checks_pass_on_a_conformant_launch():
    runs = smol_launch()
    for verdict in (checks.check_smolvm_grammar(runs), checks.check_from_sidecar(runs),
                    checks.check_version_first(runs),
                    checks.check_cp_regular_file(runs, {"/s/ca.pem": "file"}),
                    checks.check_smolvm_no_net(runs), checks.check_smolvm_sockets(runs, _Plan()),
                    checks.check_no_host_mounts(runs),
                    checks.check_publish_ephemeral_loopback(runs)):
        assert verdict.ok, verdict


@pytest.mark.parametrize(("launch", "check", "why"), [
    (dict(create=f"smolvm machine create m --from /t/x.smolmachine --net --allow-cidr {PUB}/32"),
     checks.check_smolvm_grammar, "unexpected positional"),
    (dict(from_="/t/x"), checks.check_from_sidecar, "executable stub"),
    (dict(pack="-o /t/y"), checks.check_from_sidecar, "not the sidecar"),
    (dict(version=False), checks.check_version_first, "no `smolvm --version`"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} --net"),
     checks.check_smolvm_no_net, "--net gives the guest networking"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} --net "
                 f"--allow-cidr {PUB}/32"),
     checks.check_smolvm_no_net, "--allow-cidr gives the guest networking"),
    (dict(create="smolvm machine create -n m --from /t/x.smolmachine --outbound-localhost-only"),
     checks.check_smolvm_no_net, "--outbound-localhost-only"),
    (dict(create="smolvm machine create -n m --from /t/x.smolmachine --allow-host example.test"),
     checks.check_smolvm_no_net, "--allow-host"),
    (dict(create="smolvm machine create -n m --from /t/x.smolmachine --dns 10.0.0.1"),
     checks.check_smolvm_no_net, "--dns"),
    (dict(create="smolvm machine create -n m --from /t/x.smolmachine --network fab"),
     checks.check_smolvm_no_net, "--network"),
    (dict(create="smolvm machine create -n m --from /t/x.smolmachine -p 8080:80"),
     checks.check_smolvm_no_net, "-p/--port"),
    (dict(create="smolvm machine create m --from /t/x.smolmachine --net"),  # unparsable
     checks.check_smolvm_no_net, "--net"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} "
                 "--docker-socket"), checks.check_no_host_mounts, "docker-socket"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} "
                 "-v /home/me:/work"), checks.check_no_host_mounts, "host path"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} "
                 "--mount-socket /var/run/docker.sock:/run/d.sock"),
     checks.check_no_host_mounts, "mounts a host socket"),
    (dict(create=f"smolvm machine create -n m --from /t/x.smolmachine {SOCK} "
                 "-p 8080:80"), checks.check_publish_ephemeral_loopback, "fixed host port"),
])
def test_smolvm_checks_fail_each_defect(launch, check, why):
    verdict = check(smol_launch(**launch))
    assert verdict.problems and any(why in p for p in verdict.problems), verdict


def test_cp_check_reads_what_the_source_was():
    runs = smol_launch(cp_src="/s/skills")
    assert "directory" in checks.check_cp_regular_file(runs, {"/s/skills": "dir"}).problems[0]
    assert "symlink" in checks.check_cp_regular_file(runs, {"/s/skills": "symlink"}).problems[0]
    assert checks.check_cp_regular_file(runs, {"/s/skills": "file"}).ok


def test_smolvm_checks_are_not_supported_without_smolvm():
    runs = docker_launch()
    for check in (checks.check_smolvm_grammar, checks.check_from_sidecar,
                  checks.check_version_first, checks.check_smolvm_no_net):
        assert check(runs).na, check
    assert checks.check_smolvm_sockets(runs, _Plan()).na


@pytest.mark.parametrize("sockets,plan,why", [
    ("", _Plan(), "egress has 0 --mount-socket"),
    (f"{SOCK} --mount-socket /tmp/b-1/pipelock.sock:/run/bottle/pipelock.sock", _Plan(),
     "serves pipelock, not one of the agent-facing daemons"),
    (f"{SOCK} --mount-socket /var/run/docker.sock:/run/d.sock", _Plan(),
     "serves docker, not one of the agent-facing daemons"),
    (f"{SOCK} --mount-socket /var/run/podman.socket:/run/p", _Plan(),
     "no daemon named <daemon>.sock"),
    (f"{SOCK} --mount-socket /tmp/b-1/egress.sock:/run/bottle/e2.sock", _Plan(),
     "egress has 2 --mount-socket"),
    ("--mount-socket /tmp/b-1/egress.sock:run/egress.sock", _Plan(), "not absolute"),
    (SOCK, _Plan(daemons=("egress", "pipelock", "supervise")), "supervise has 0"),
    (SOCK, _Plan(routed=False, daemons=("egress", "pipelock")), "pipelock has 0"),
])
def test_smolvm_sockets_check_fails_each_defect(sockets, plan, why):
    runs = smol_launch(create=f"smolvm machine create -n m --from /t/x.smolmachine {sockets}")
    verdict = checks.check_smolvm_sockets(runs, plan)
    assert verdict.problems and any(why in p for p in verdict.problems), verdict


def docker_launch(tool="docker", *, agent_opts="", net_create="--internal -o "
                  "com.docker.network.bridge.inhibit_ipv4=true", publish="127.0.0.1::9099",
                  exec_opts="-u node -e HOME=/home/node") -> list[list[str]]:
    t = tool
    return [
        A(f"{t} network create {net_create} --label k=v b-agent"),
        A(f"{t} network create --label k=v b-out"),
        A(f"{t} run -d --name b-bundle --network b-out -p {publish} bundle bottle-bundle egress"),
        A(f"{t} network connect --alias pipelock b-agent b-bundle"),
        A(f"{t} create --name b-agent {agent_opts} --network b-agent --entrypoint sleep "
          "claude-bottle:latest infinity"),
        A(f"{t} start b-agent"),
        A(f"{t} exec {exec_opts} b-agent claude --print x"),
    ]


def test_docker_checks_pass_on_a_conformant_launch():
    runs = docker_launch()
    for check in (checks.check_docker_grammar, checks.check_networks_internal,
                  checks.check_networks_no_host_address, checks.check_no_privilege,
                  checks.check_no_host_namespaces, checks.check_no_host_mounts,
                  checks.check_no_host_gateway, checks.check_publish_ephemeral_loopback):
        verdict = check(runs)
        assert verdict.ok, (check.__name__, verdict)


@pytest.mark.parametrize(("launch", "check", "why"), [
    (dict(net_create="--label"), checks.check_docker_grammar, "positional"),
    (dict(net_create=""), checks.check_networks_internal, "without --internal"),
    (dict(net_create="--internal"), checks.check_networks_no_host_address, "inhibit_ipv4"),
    (dict(agent_opts="--privileged"), checks.check_no_privilege, "--privileged"),
    (dict(exec_opts="--privileged -u node -e HOME=/home/node"), checks.check_no_privilege,
     "--privileged"),
    (dict(agent_opts="--cap-add SYS_ADMIN"), checks.check_no_privilege, "--cap-add"),
    (dict(agent_opts="--cap-add CHOWN"), checks.check_no_privilege, "without --cap-drop ALL"),
    (dict(agent_opts="--cap-drop ALL --cap-add NET_RAW"), checks.check_no_privilege,
     "forbidden"),
    (dict(agent_opts="--cap-drop all --cap-add cap_sys_admin"), checks.check_no_privilege,
     "forbidden"),
    (dict(agent_opts="--cap-drop ALL --cap-add ALL"), checks.check_no_privilege, "forbidden"),
    (dict(agent_opts="--pid host"), checks.check_no_host_namespaces, "--pid host"),
    (dict(agent_opts="--userns=host"), checks.check_no_host_namespaces, "--userns host"),
    (dict(agent_opts="--network host"), checks.check_no_host_namespaces, "--network host"),
    (dict(agent_opts="-v /var/run/docker.sock:/var/run/docker.sock"), checks.check_no_host_mounts,
     "engine socket"),
    (dict(agent_opts="--mount type=bind,source=/etc,target=/h"), checks.check_no_host_mounts,
     "bind-mounts"),
    (dict(agent_opts="--use-api-socket"), checks.check_no_host_mounts, "API socket"),
    (dict(agent_opts="--add-host host.docker.internal:host-gateway"),
     checks.check_no_host_gateway, "host-gateway"),
    (dict(publish="127.0.0.1:8080:9099"), checks.check_publish_ephemeral_loopback, "8080"),
    (dict(publish="9099"), checks.check_publish_ephemeral_loopback, "loopback"),
    (dict(agent_opts="-P"), checks.check_publish_ephemeral_loopback, "-P"),
])
def test_docker_checks_fail_each_defect(launch, check, why):
    verdict = check(docker_launch(**launch))
    assert verdict.problems and any(why in p for p in verdict.problems), (check.__name__, verdict)


def test_agent_on_the_default_bridge_fails_internal():
    runs = docker_launch()
    runs[4] = A("docker create --name b-agent claude-bottle:latest sleep infinity")
    assert "default bridge" in checks.check_networks_internal(runs).problems[0]


def test_capabilities_added_back_after_dropping_all_pass():
    """Issue 16: the hardened reference adds CHOWN, FOWNER, DAC_OVERRIDE back
    after --cap-drop ALL; that is not a privilege (a forbidden one would be)."""
    opts = "--cap-drop ALL --cap-add CHOWN --cap-add FOWNER --cap-add DAC_OVERRIDE"
    assert checks.check_no_privilege(docker_launch(agent_opts=opts)).ok


def test_named_volume_is_not_a_host_mount():
    assert checks.check_no_host_mounts(docker_launch(agent_opts="-v cache:/home/node/.cache")).ok


def test_podman_only_flag_is_a_vocabulary_gap_not_a_failure():
    # `podman exec --preserve-fds N` (containers/podman@c6580b4a52
    # cmd/podman/containers/exec.go:88-89) is real; the suite models podman's
    # own flags for run/create/network create only.
    runs = docker_launch("podman", exec_opts="--preserve-fds 1 -u node -e HOME=/home/node")
    verdict = checks.check_docker_grammar(runs)
    assert verdict.na and "podman" in verdict.na and not verdict.problems
    assert "--preserve-fds" in verdict.na


def test_podman_own_flags_are_read_from_podmans_source():
    """A correct podman launch: `network create --internal --disable-dns`
    (containers/podman@c6580b4a52 cmd/podman/networks/create.go:56, :83) and
    `create --no-hosts --pod P` (cmd/podman/common/netflags.go:102,
    common/create.go:915) parse, and every guest clause holds."""
    runs = docker_launch("podman", net_create="--internal --disable-dns",
                         agent_opts="--no-hosts --pod p1")
    for check in (checks.check_docker_grammar, checks.check_networks_internal,
                  checks.check_no_privilege, checks.check_no_host_namespaces,
                  checks.check_no_host_mounts, checks.check_no_host_gateway,
                  checks.check_publish_ephemeral_loopback):
        verdict = check(runs)
        assert verdict.ok, (check.__name__, verdict)
    create = parse_any(runs[0])[0]
    assert create.has("disable-dns") and create.has("internal")
    # a value flag of podman's takes the next token (pflag): --route VALUE
    inv = parse_any(A("podman network create --route 10.0.0.0/8,10.1.0.1 --internal n"))[0]
    assert inv.values("route") == ["10.0.0.0/8,10.1.0.1"] and inv.positionals == ("n",)


def test_unparseable_network_create_is_not_supported_naming_the_flag():
    """A `network create` the suite cannot parse is never silently dropped
    (which made GUEST-NET-INTERNAL FAIL with "which this launch did not
    create"): every clause that must read it is NOT_SUPPORTED naming it."""
    runs = docker_launch("podman", net_create="--internal --frobnicate")
    for check in (checks.check_networks_internal, checks.check_no_privilege,
                  checks.check_no_host_namespaces, checks.check_no_host_mounts,
                  checks.check_no_host_gateway, checks.check_publish_ephemeral_loopback):
        verdict = check(runs)
        assert not verdict.problems and verdict.na and "--frobnicate" in verdict.na, (
            check.__name__, verdict)
    assert "--frobnicate" in checks.check_docker_grammar(runs).na


def test_podman_network_alias_form_is_read():
    runs = docker_launch("podman")
    runs[4] = A("podman create --name b-agent --network b-agent:alias=agent claude-bottle sleep 1")
    assert checks.check_networks_internal(runs).ok
    assert checks.check_networks_no_host_address(runs).na  # docker-only option


def test_agent_guest_needs_an_agent_exec():
    runs = docker_launch()[:-1]
    assert checks.check_networks_internal(runs).na


# -- topology: the agent by role, any engine's --network form --------------------------


def test_topology_finds_the_agent_by_role_and_reads_podman_networks():
    from conformance.argv import topology
    runs = [
        A("podman run -d --name p --network b:alias=pipelock sha256:" + "c" * 64
          + " bottle-bundle pipelock,egress"),
        A("podman network connect --alias egress a p"),
        A("podman create --name ag --network a:alias=agent sha256:" + "d" * 64 + " sleep 1"),
    ]
    agent = [A("podman exec -u node -e HOME=/home/node ag claude --print x")]
    found = topology.containers(runs, agent)
    assert found["p"].networks == {"a", "b"} and found["p"].daemons == {"pipelock", "egress"}
    assert found["p"].aliases == {"pipelock", "egress"}
    assert found["ag"].networks == {"a"} and found["ag"].is_agent and not found["p"].is_agent
    # without the agent exec, an image pinned by ID matches nothing: no agent is guessed
    assert not any(c.is_agent for c in topology.containers(runs, agent_image="claude:1").values())


def test_docker_long_network_syntax_names_the_network():
    from conformance.argv import topology
    found = topology.containers([A("docker create --name ag --network name=a,alias=x img")])
    assert found["ag"].networks == {"a"} and found["ag"].aliases == {"x"}


# -- issue 16: the widened guest clauses and the smolvm network model ---------------


@pytest.mark.parametrize(("opts", "why"), [
    ("--security-opt seccomp=unconfined", "seccomp confinement off"),
    ("--security-opt seccomp:unconfined", "seccomp confinement off"),
    ("--security-opt apparmor=unconfined", "apparmor confinement off"),
    ("--security-opt systempaths=unconfined", "systempaths confinement off"),
    ("--security-opt label=disable", "label confinement off"),
    ("--security-opt label:disable", "label confinement off"),
    ("--device /dev/kvm", "host device"),
    ("--device-cgroup-rule c\\ 1:3\\ mr", "host device"),
    ("--gpus all", "host device"),
    ("--cap-add ALL", "ALL"),
    ("--cap-drop ALL --cap-add CHOWN,NET_ADMIN", "NET_ADMIN"),
    ("--cap-add cap_sys_ptrace", "SYS_PTRACE"),
])
def test_no_privilege_reads_every_weakening_flag(opts, why):
    verdict = checks.check_no_privilege(docker_launch(agent_opts=opts))
    assert any(why in p for p in verdict.problems), verdict


def test_no_privilege_accepts_a_hardened_agent():
    """What a hardened backend runs: --cap-drop ALL, docker default
    capabilities added back (moby oci/defaults.go defaultCapabilities),
    no-new-privileges, limits."""
    opts = ("--cap-drop ALL --cap-add CHOWN --cap-add DAC_OVERRIDE,FOWNER,SETUID,SETGID "
            "--cap-add CAP_NET_BIND_SERVICE --security-opt no-new-privileges "
            "--security-opt seccomp=/etc/docker/seccomp.json --pids-limit 256 --memory 2g "
            "--cpus 2")
    assert checks.check_no_privilege(docker_launch(agent_opts=opts)).ok


def test_agent_connected_later_still_sits_on_the_default_bridge():
    runs = docker_launch()
    runs[4] = A("docker create --name b-agent --entrypoint sleep claude-bottle:latest infinity")
    runs.insert(5, A("docker network connect b-agent b-agent"))
    problems = checks.check_networks_internal(runs).problems
    assert len(problems) == 1 and "created with no --network" in problems[0], problems


@pytest.mark.parametrize(("net_create", "add_host", "why"), [
    ("--internal --subnet 10.9.8.0/24", "h:10.9.8.1", "gateway of a network this launch"),
    ("--internal --subnet 10.9.8.0/24 --gateway 10.9.8.254", "h:10.9.8.254", "gateway"),
    ("--internal", "h=127.0.0.1", "loopback"),
    ("--internal", "h:192.168.1.10", "no address this launch gave"),
    ("--internal", "h:fe80::1", "no address this launch gave"),
    ("--internal", "h:host-gateway", "host-gateway"),
])
def test_add_host_to_any_host_address_fails(net_create, add_host, why):
    runs = docker_launch(net_create=net_create, agent_opts=f"--add-host {add_host}")
    problems = checks.check_no_host_gateway(runs).problems
    assert any(why in p for p in problems), problems


def test_add_host_to_a_container_of_the_launch_passes():
    runs = docker_launch(agent_opts="--add-host egress:10.9.8.7")
    runs[2] = A("docker run -d --name b-bundle --network b-out --ip 10.9.8.7 -p 127.0.0.1::9099 "
                "bundle bottle-bundle egress")
    assert checks.check_no_host_gateway(runs).ok


def test_declared_guest_mounts_are_allowed_but_never_an_engine_socket():
    runs = docker_launch(agent_opts="-v /srv/work:/home/node/work")
    assert checks.check_no_host_mounts(runs).problems
    assert checks.check_no_host_mounts(runs, ("/home/node/work",)).ok
    sock = docker_launch(agent_opts="-v /var/run/docker.sock:/var/run/docker.sock")
    assert checks.check_no_host_mounts(sock, ("/var/run/docker.sock",)).problems


@pytest.mark.parametrize(("flags", "network", "everything"), [
    ("", False, None),
    ("--net", True, "unrestricted"),
    ("--dns 10.0.0.1", True, "unrestricted"),
    ("-p 8080:80", True, "unrestricted"),
    ("--network n", True, "unrestricted"),
    ("--net --outbound-localhost-only", True, "outbound-localhost-only"),
    ("--net --allow-host example.invalid", True, "allow-host"),
    ("--net --allow-cidr 127.77.1.2/32", True, None),
    ("--allow-cidr 127.77.1.2/32", True, None),
])
def test_machine_network_reads_every_networking_flag(flags, network, everything):
    """smolvm 1.8.0/1.9.3 src/network/launch.rs: any of these flags gives the
    VM a network; without an allow list it is unrestricted (facts file)."""
    from conformance.argv import topology

    net = topology.machine_network(A(f"smolvm machine create --name m -I /a.tar {flags} -- x"))
    assert net is not None and net.name == "m" and net.network is network
    if everything is None:
        assert net.everything is None
    else:
        assert everything in net.everything
    assert topology.machine_network(A("smolvm machine start --name m")) is None
