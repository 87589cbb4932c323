"""The contract as data: one `Clause` constant per requirement.

This registry is the single source of truth. CONTRACT.md is generated from
it (``bottle-conformance contract``), tests enrol with ``@clause(ID)``, and
failure messages quote the sentence. IDs are stable: never reuse or rename
one; retire a clause by removing it and noting the ID in the changelog.

Each sentence is one RFC 2119 requirement. ``source`` says where the clause
was learned (a seed commit in DESIGN's histories, DESIGN itself, or the team
brief), so a reader can go and see why it exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .capabilities import Capability, Profile

MUST: Literal["MUST"] = "MUST"
SHOULD: Literal["SHOULD"] = "SHOULD"
LEVELS = (MUST, SHOULD)

SNAPSHOT, INVARIANT, LIVE = "snapshot", "invariant", "live"
TIERS = (SNAPSHOT, INVARIANT, LIVE)

# Profiles (see conformance.capabilities.Profile), for ``Clause(profile=...)``.
CORE, DOCKER_CLI, CONTAINER_GUEST, SMOLVM = (
    Profile.CORE, Profile.DOCKER_CLI, Profile.CONTAINER_GUEST, Profile.SMOLVM)

ID_PATTERN = re.compile(r"^[A-Z]+(-[A-Z0-9]+)+$")


@dataclass(frozen=True)
class Clause:
    """One requirement of the contract.

    ``tier`` is the tier (or tuple of tiers) whose tests check it;
    ``capability`` is the capability a backend must declare for the clause
    to apply (None: every backend). ``profile`` is the part of the contract
    the clause belongs to (`Profile`): ``core`` (every backend) or one a
    backend declares because it drives that tool; outside its profiles a
    clause is NOT_APPLICABLE. A new clause joins a profile with one keyword:
    ``Clause(..., profile=SMOLVM)``.
    """

    id: str
    level: Literal["MUST", "SHOULD"]
    sentence: str
    tier: str | tuple[str, ...]
    capability: str | None = None
    source: str = ""
    profile: str = Profile.CORE

    def __post_init__(self) -> None:
        if self.profile not in set(Profile):
            raise ValueError(f"{self.id}: unknown profile {self.profile!r}")
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"clause id {self.id!r} does not match {ID_PATTERN.pattern}")
        if self.level not in LEVELS:
            raise ValueError(f"{self.id}: level must be MUST or SHOULD, not {self.level!r}")
        bad = [t for t in self.tiers if t not in TIERS]
        if bad or not self.tiers:
            raise ValueError(f"{self.id}: unknown tier {bad or self.tier!r}")

    @property
    def tiers(self) -> tuple[str, ...]:
        return (self.tier,) if isinstance(self.tier, str) else tuple(self.tier)

    @property
    def headline(self) -> str:
        """``[ID] sentence``: how failure messages name the clause."""
        return f"[{self.id}] {self.sentence}"


# --- plan (prepare) ---------------------------------------------------------

PLAN_PURE = Clause(
    "PLAN-PURE", MUST,
    "prepare() MUST make no external call (no runner, subprocess, network or "
    "filesystem write), MUST read the host only through its HostContext (decoy "
    "values for every process environment variable and a decoy HOME of credential "
    "files, planted also while the backend's modules are imported, MUST neither "
    "change the plan nor appear in it) and MUST return equal plans for equal inputs.",
    INVARIANT, None,
    "seed: smolmachines prepare ran docker build before the operator confirmed "
    "(launch-boundary fix); DESIGN §3",
)
PLAN_HOP = Clause(
    "PLAN-HOP", MUST,
    "When any egress route is declared (including auto routes) the agent's first "
    "hop MUST be egress, otherwise pipelock, and egress's upstream proxy MUST "
    "always be pipelock.",
    INVARIANT, None,
    "seed: auth chain bypassed egress after the port pivot (401 Invalid bearer token)",
)
PLAN_DAEMONS = Clause(
    "PLAN-DAEMONS", MUST,
    "The plan's daemons MUST be egress and pipelock, plus git-gate iff upstreams "
    "are declared and supervise iff supervise is enabled.",
    INVARIANT, None,
    "seed: chunk 4b (bundle daemons idled with an empty daemons list)",
)
LAUNCH_PACK_IN_LAUNCH = Clause(
    "LAUNCH-PACK-IN-LAUNCH", MUST,
    "The plan MUST carry only image references (strings); any image build, save, "
    "push or pack MUST happen in launch(), never in prepare().",
    INVARIANT, None,
    "seed: _ensure_smolmachine moved from prepare.py to launch.py "
    "(agent_from_path became agent_image_ref)",
)

# --- exec framing ------------------------------------------------------------

SNAP_MATCH = Clause(
    "SNAP-MATCH", MUST,
    "A backend's recorded launch, provisioning, agent argv and teardown MUST equal "
    "the snapshot its author reviewed and keeps in their own repository.",
    SNAPSHOT, None,
    "DESIGN s3/s6: every external command goes through the runner, so a change in "
    "what a backend runs is a reviewed diff, never a surprise",
)
EXEC_ABI = Clause(
    "EXEC-ABI", MUST,
    "Every Bottle MUST implement agent_argv(argv, *, tty) returning the full host "
    "argv, so callers MUST NOT need a backend-specific method to run the agent.",
    SNAPSHOT, None,
    "seed: AttributeError 'SmolmachinesBottle' object has no attribute "
    "'claude_docker_argv'",
)
EXEC_USER = Clause(
    "EXEC-USER", MUST,
    "The agent and every command touching user state MUST run as node with "
    "HOME=/home/node, and where the exec channel is root, runuser -u node MUST "
    "precede the agent binary with USER=node set beside HOME.",
    (INVARIANT, LIVE), None,
    "seeds: git user config and MCP entry landed in /root (bare runuser inherits "
    "HOME=/root; smolvm exec is always root)",
)
EXEC_TTY = Clause(
    "EXEC-TTY", MUST,
    "agent_argv MUST add TTY framing (interactive flags, any resize wrapper) only "
    "when tty=True.",
    SNAPSHOT, Capability.TTY,
    "seed: smolvm exec -t never forwards the window size (pty_resize wrapper, "
    "TestClaudeArgvNoTTY)",
)
EXEC_PTY_ABS = Clause(
    "EXEC-PTY-ABS", MUST,
    "A pty resize wrapper, where a backend uses one, MUST be run as python "
    "<absolute path to the script> (never python -m) and MUST import only the "
    "standard library.",
    SNAPSHOT, Capability.TTY,
    "seed: python -m claude_bottle...pty_resize died with ModuleNotFoundError in "
    "a tmux pane whose cwd was not the repo",
)
EXEC_RESUME = Clause(
    "EXEC-RESUME", MUST,
    "Wrapping the agent tail of agent_argv in a resume-with-fallback shell "
    "(sh -c '<agent> --continue || <agent>') MUST keep the user-switch prefix "
    "before the agent binary.",
    INVARIANT, None,
    "seed: claude_argv moved onto the Bottle ABC; the split-at-'claude' wrap "
    "must keep runuser",
)
SECRET_ARGV = Clause(
    "SECRET-ARGV", MUST,
    "No argv a backend runs MUST contain a token value, literally or encoded "
    "(base64, base64url, hex, URL, JSON, or compressed with gzip, zlib, bzip2 or xz "
    "and then encoded), whole or split over words or quotes; a "
    "token MUST reach a child only through the runner's env, named on argv as a "
    "bare -e NAME.",
    INVARIANT, None,
    "seed: chunk 4b (token slots as bare -e names; values never land on argv)",
)
SECRET_FILES = Clause(
    "SECRET-FILES", MUST,
    "No host file a launch's commands are handed (an --env-file, a mounted or "
    "copied file, a config) or that the backend writes into the bottle's state "
    "MUST contain a token value, literally or encoded.",
    INVARIANT, None,
    "issue 10 (a token in an env file passes SECRET-ARGV); seed chunk 4b (values "
    "travel only in the runner's env)",
)
SECRET_PLAN = Clause(
    "SECRET-PLAN", MUST,
    "A plan's repr and JSON form MUST NOT contain any secret value.",
    INVARIANT, None,
    "DESIGN §3 and team brief (plan.secrets is redacted by to_json)",
)

# --- ports and addresses ----------------------------------------------------

PORT_LOOPBACK = Clause(
    "PORT-LOOPBACK", MUST,
    "Every bundle port a backend publishes to the host MUST be bound to a host "
    "loopback address only.",
    (SNAPSHOT, INVARIANT, LIVE), None,
    "seed: bundle bridge IP unreachable on Docker Desktop (port pivot to "
    "-p 127.0.0.1::PORT)",
)
PORT_EGRESS_ONLY_WHEN_ROUTED = Clause(
    "PORT-EGRESS-ONLY-WHEN-ROUTED", MUST,
    "The agent MUST be able to reach egress iff the bottle is routed, and when it "
    "is routed pipelock MUST stay bundle-internal (unreachable from the agent).",
    (SNAPSHOT, INVARIANT), None,
    "seed: auth chain fix (publish egress 9099 when routes are declared, leave "
    "pipelock bundle-internal)",
)
LAUNCH_PROXY_ENV = Clause(
    "LAUNCH-PROXY-ENV", MUST,
    "The agent's HTTPS_PROXY and HTTP_PROXY MUST point at its first hop's "
    "agent-facing address.",
    (SNAPSHOT, LIVE), None,
    "seed: port pivot and auth chain fix (HTTPS_PROXY=http://127.0.0.1:<egress port>)",
)

# --- credentials -------------------------------------------------------------

CRED_EXP = Clause(
    "CRED-EXP", MUST,
    "Codex placeholder access and id tokens MUST carry the real host token's exp "
    "claim, whatever that exp is (past, near or far), never a fresh now+1h.",
    INVARIANT, Capability.CODEX,
    "seed: codex_auth placeholder exp now+1h made Codex refresh and drop to the "
    "sign-in screen",
)
CRED_SHAPE = Clause(
    "CRED-SHAPE", MUST,
    "Credential placeholders MUST have exactly the agent's shape and MUST contain "
    "no real token material: Codex's auth.json only OPENAI_API_KEY (null), "
    "tokens{id_token, access_token (3-part JWTs), refresh_token, account_id (the "
    "host's)}, the host's last_refresh, and auth_mode only as the host has it; "
    "Claude's .credentials.json only claudeAiOauth{accessToken, refreshToken, "
    "expiresAt and scopes (the host's), subscriptionType only as the host has it}.",
    INVARIANT, None,
    "DESIGN §8; codex-rs/login/src/auth/storage.rs (AuthDotJson) and "
    "codex-rs/login/src/token_data.rs (TokenData); issue 10 (account_id null, an "
    "added auth_mode or unknown keys passed)",
)
CRED_CA = Clause(
    "CRED-CA", MUST,
    "Codex bottles MUST set CODEX_CA_CERTIFICATE to the agent CA bundle that "
    "trusts the first hop's CA.",
    INVARIANT, Capability.CODEX,
    "seed: Codex is rustls and ignores the system store and NODE_EXTRA_CA_CERTS",
)
CRED_CA_CLAUDE = Clause(
    "CRED-CA-CLAUDE", MUST,
    "Claude bottles MUST set NODE_EXTRA_CA_CERTS to the agent CA bundle that "
    "trusts the first hop's CA.",
    INVARIANT, Capability.CLAUDE,
    "team brief (domain rules: guest CA trust)",
)

# --- pipelock -----------------------------------------------------------------

PIPELOCK_PASS = Clause(
    "PIPELOCK-PASS", MUST,
    "Every host egress injects a token for (declared or auto route) MUST appear in "
    "pipelock's tls_interception.passthrough_domains, apex listed explicitly, and "
    "in api_allowlist.",
    INVARIANT, None,
    "seed: pipelock header DLP flagged the bearer egress injected and the retry "
    "storm tripped 429",
)
PIPELOCK_PASS_CODEX = Clause(
    "PIPELOCK-PASS-CODEX", MUST,
    "With forward_host_credentials on a codex bottle, every Codex API host (apex "
    "listed explicitly, plus *.chatgpt.com) MUST appear in passthrough_domains and "
    "in api_allowlist.",
    INVARIANT, Capability.CODEX,
    "seed: auto tls_passthrough for the Codex API hosts (auto routes are not in "
    "egress.routes, so the hosts are added explicitly)",
)
PIPELOCK_SCHEMA = Clause(
    "PIPELOCK-SCHEMA", MUST,
    "The rendered pipelock.yaml MUST be a config pipelock loads (only its own keys, "
    "values its validators accept, DLP regexes in RE2 syntax) and MUST set "
    "forward_proxy.enabled to true.",
    INVARIANT, None,
    "pipelock source: internal/config/load.go (KnownFields), validate.go",
)
PIPELOCK_ENFORCE = Clause(
    "PIPELOCK-ENFORCE", MUST,
    "The rendered pipelock.yaml MUST make pipelock enforce the bottle's policy: "
    "mode strict, a non-empty api_allowlist that admits the agent's API hosts, no "
    "bare or top-level-domain wildcard, tls_interception enabled, and "
    "passthrough_domains exactly the hosts the bottle passes through (route hosts, "
    "the agent's API hosts and *.chatgpt.com for Codex when forwarding, "
    "tls_passthrough), and DLP patterns that catch the bottle's own credential "
    "shapes (a JWT when Codex credentials are forwarded, the Anthropic key for "
    "Claude; pipelock compiles them with (?i)), and MUST NOT weaken pipelock's SSRF "
    "guard beyond what the host context asked: no ssrf.ip_allowlist, no narrowed "
    "internal, and trusted_domains only the names in BOTTLE_PIPELOCK_TRUSTED_HOSTS.",
    INVARIANT, None,
    "issue 9; pipelock source: internal/scanner/scanner.go New and checkAllowlist "
    "(allowlist enforced only in strict mode; an empty list allows every host); "
    "issue 15: scanner.go checkSSRF, IsTrustedDomain, IsIPAllowlisted; normalize.go "
    "(default internal)",
)

# --- provisioning ---------------------------------------------------------------

PROV_CA = Clause(
    "PROV-CA", MUST,
    "CA provisioning MUST be one copy into the guest followed by exactly one root "
    "sh -c that runs chown, chmod and update-ca-certificates.",
    SNAPSHOT, None,
    "seed: update-ca-certificates SIGKILLed on Docker Desktop (fold into one exec "
    "round trip)",
)
PROV_CA_ONE_ADDED = Clause(
    "PROV-CA-ONE-ADDED", MUST,
    "Launch MUST fail with a clear error, and clean up, when update-ca-certificates "
    "does not report '1 added'.",
    SNAPSHOT, None,
    "seed: failing silently was how the update-ca-certificates SIGKILL went unnoticed",
)
PROV_CA_SELECT = Clause(
    "PROV-CA-SELECT", MUST,
    "The guest MUST be made to trust the egress CA when the bottle is routed and "
    "the pipelock CA otherwise.",
    (SNAPSHOT, INVARIANT), None,
    "seed: chunk 4d (ca.py selects egress vs pipelock CA, same logic as docker)",
)
PROV_GITUSER = Clause(
    "PROV-GITUSER", MUST,
    "Provisioning MUST run exactly one git config --global user.<field> per set "
    "git_user field, as node with HOME=/home/node, and none when git_user is empty.",
    (SNAPSHOT, INVARIANT), None,
    "seed: _provision_git_user for smolmachines (bare runuser would write "
    "/root/.gitconfig)",
)
PROV_GITGATE = Clause(
    "PROV-GITGATE", MUST,
    "Every declared upstream MUST get one insteadOf rewrite in node's ~/.gitconfig "
    "from its URL to <the backend's git-gate address>/<name>.git.",
    INVARIANT, Capability.GIT_GATE,
    "seed: chunk 4d (git_gate_render_gitconfig parameterised on gate_host)",
)
PROV_GIT_CWD = Clause(
    "PROV-GIT-CWD", MUST,
    "When the bottle has a cwd, provisioning MUST copy the host <cwd>/.git to "
    "/home/node/work/.git and chown it recursively to node.",
    SNAPSHOT, None,
    "seed: chunk 4d (copy host .git when --cwd was passed)",
)
PROV_PROMPT = Clause(
    "PROV-PROMPT", MUST,
    "The prompt MUST land at /home/node/.claude-bottle-prompt.txt with mode 0600 "
    "owned by node, and agent_argv MUST pass --append-system-prompt-file iff the "
    "prompt is non-empty.",
    (SNAPSHOT, LIVE), Capability.CLAUDE,
    "seed: chunk 4a (provision_prompt) and chunk 4d path fixups to /home/node",
)
PROV_SKILLS = Clause(
    "PROV-SKILLS", MUST,
    "Each skill MUST be copied to /home/node/.claude/skills/<name> and chowned "
    "recursively to node.",
    (SNAPSHOT, LIVE), Capability.CLAUDE,
    "seed: chunk 4a (provision_skills) and chunk 4d path fixups to /home/node",
)
PROV_MCP = Clause(
    "PROV-MCP", MUST,
    "When supervise is enabled in a claude bottle, provisioning MUST register it with "
    "claude mcp add --scope user at the supervise address the agent reaches (an alias of the "
    "supervise container on the agent's network, or the host address published "
    "for it), and a registration failure MUST be logged, not fatal.",
    (SNAPSHOT, LIVE), Capability.SUPERVISE,
    "seed: chunk 4d (supervise.py: failure is logged but non-fatal)",
)
PROV_MCP_USER = Clause(
    "PROV-MCP-USER", MUST,
    "The supervise MCP registration MUST run as node with HOME=/home/node so it "
    "lands in node's config (/home/node/.claude.json; /home/node/.codex/config.toml "
    "for codex), never in root's config.",
    SNAPSHOT, Capability.SUPERVISE,
    "seed: /mcp showed 'No MCP servers configured' (entry written to root's "
    "~/.claude.json)",
)

# --- issue 14 item 5: codex bottles get what claude bottles get ----------------------
# Codex reads none of Claude Code's places: each clause names where Codex 0.169.0
# reads it (codex-rs source cited in `bottle_api.conventions`).

PROV_CODEX_PROMPT = Clause(
    "PROV-CODEX-PROMPT", MUST,
    "In a codex bottle a non-empty prompt MUST land at /home/node/.codex/AGENTS.md "
    "(Codex's global instructions) with mode 0600 owned by node, as a file copied in "
    "(never on an argv); an empty prompt MUST write no AGENTS.md, and agent_argv MUST "
    "NOT pass Claude's --append-system-prompt-file.",
    (SNAPSHOT, INVARIANT, LIVE), Capability.CODEX,
    "issue 14 item 5; codex-rs core/src/agents_md.rs "
    "AgentsMdManager::load_global_instructions (CODEX_HOME/AGENTS.md)",
)
PROV_CODEX_SKILLS = Clause(
    "PROV-CODEX-SKILLS", MUST,
    "In a codex bottle each skill MUST be copied to /home/node/.agents/skills/<name> "
    "(where Codex loads user skills) and chowned recursively to node, and nothing "
    "MUST be written under /home/node/.claude/skills.",
    (SNAPSHOT, INVARIANT, LIVE), Capability.CODEX,
    "issue 14 item 5; codex-rs core-skills/src/loader.rs "
    "skill_roots_from_layer_stack_inner ($HOME/.agents/skills)",
)
PROV_CODEX_MCP = Clause(
    "PROV-CODEX-MCP", MUST,
    "When supervise is enabled in a codex bottle, provisioning MUST register it once, "
    "as node with HOME=/home/node, with codex mcp add <name> --url <the supervise "
    "address the agent reaches>, so that /home/node/.codex/config.toml holds "
    "[mcp_servers.<name>] with that url; it MUST NOT run claude mcp add, and a "
    "registration failure MUST be logged, not fatal.",
    (SNAPSHOT, INVARIANT, LIVE), Capability.CODEX,
    "issue 14 item 5; codex-rs cli/src/mcp_cmd.rs run_add (AddMcpStreamableHttpArgs "
    "-> McpServerTransportConfig::StreamableHttp)",
)

# --- launch ---------------------------------------------------------------------

LAUNCH_READY = Clause(
    "LAUNCH-READY", MUST,
    "Launch MUST observe the readiness of the guest it then provisions with a "
    "bounded poll (its probe marked purpose=READY on the runner) before any "
    "provisioning exec or copy into that guest, and MUST NOT wait with a fixed sleep.",
    SNAPSHOT, None,
    "seed: exec warm-up race after machine_start (the 1.5 s sleep this clause "
    "replaces); issue 10 (a probe of another container)",
)
LAUNCH_MISSING_TOKEN = Clause(
    "LAUNCH-MISSING-TOKEN", MUST,
    "Launch MUST refuse, before starting anything, a route whose token_env is unset "
    "on the host, with an error naming the spec file, key and line.",
    INVARIANT, None,
    "team brief (domain rules: missing_tokens raise SpecError at launch)",
)
LAUNCH_CA_WHEN_ROUTED = Clause(
    "LAUNCH-CA-WHEN-ROUTED", SHOULD,
    "Launch SHOULD create the egress CA only when the bottle is routed.",
    SNAPSHOT, None,
    "seed: chunk 4b (egress_tls_init only when the bottle declares routes)",
)

# --- live probes ---------------------------------------------------------------

LIVE_SMOKE = Clause(
    "LIVE-SMOKE", MUST,
    "In a launched bottle, exec of echo MUST return its output and exit status 0, and "
    "each agent CLI the backend declares (claude, codex) MUST run (--version exits 0).",
    LIVE, Capability.LIVE,
    "seed: integration test_smoke_exec_echo; issue 9 (docker declared codex, the "
    "image had no codex binary)",
)
LIVE_AGENT = Clause(
    "LIVE-AGENT", MUST,
    "The real agent CLI MUST complete a request inside the bottle (claude -p, codex "
    "exec) through its real path, pipelock enforcing and egress injecting: the API "
    "MUST see the host's real token, never the placeholder, and the CLI MUST print "
    "the API's answer.",
    LIVE, Capability.LIVE,
    "issue 9 (the agent working end to end)",
)
LIVE_INTERACTIVE = Clause(
    "LIVE-INTERACTIVE", MUST,
    "Interactive claude in a fresh bottle MUST open at its input prompt, never at "
    "onboarding or the folder-trust dialog (needs `claude` and `tty` too).",
    LIVE, Capability.LIVE,
    "issue 9 (provisioning wrote neither hasCompletedOnboarding nor workdir trust "
    "into ~/.claude.json)",
)
LIVE_LOOPBACK = Clause(
    "LIVE-LOOPBACK", MUST,
    "A canary listening on host loopback MUST be unreachable from the agent; only "
    "the bundle ports published for the agent may answer.",
    LIVE, Capability.LIVE,
    "seed: integration test_localhost_reach_probe",
)
LIVE_BYPASS = Clause(
    "LIVE-BYPASS", MUST,
    "The agent MUST NOT reach egress (when not its first hop), pipelock (when "
    "behind egress) or any other address except through its first hop.",
    LIVE, Capability.LIVE,
    "seed: integration test_egress_port_bypass_probe",
)
LIVE_PIPELOCK = Clause(
    "LIVE-PIPELOCK", MUST,
    "pipelock MUST answer through the agent's first hop, and a request for a host "
    "outside the allowlist MUST get 403.",
    LIVE, Capability.LIVE,
    "seed: integration test_pipelock_answers_on_bundle_ip",
)
LIVE_AUTH = Clause(
    "LIVE-AUTH", MUST,
    "A routed HTTPS request MUST arrive upstream carrying the real token, a cleartext "
    "http:// request to a route host MUST arrive with the placeholder unchanged, and "
    "the guest MUST only ever hold the placeholder (no real token, raw or base64-, "
    "hex- or percent-encoded, in any file of the guest or in the environment or command "
    "line of any process the guest can read, as node or as root, its own helper "
    "processes included).",
    LIVE, Capability.LIVE,
    "seed: auth chain fix (placeholder reached the API verbatim: 401); issue 20 (a "
    "credential helper of node's with the real token in its environment: root without "
    "CAP_SYS_PTRACE cannot read it, node can)",
)
LIVE_CA_TRUST = Clause(
    "LIVE-CA-TRUST", MUST,
    "TLS through the agent's first hop MUST validate inside the guest with the "
    "trust the backend provisioned (system store, and CODEX_CA_CERTIFICATE for "
    "codex); the CA pipelock signs with MUST be one real pipelock loads (an ECDSA "
    "key in an EC PRIVATE KEY or PRIVATE KEY block, a CA certificate with keyCertSign "
    "and that key; an RSA CA stops pipelock at start).",
    LIVE, Capability.LIVE,
    "seed: missing CA hash symlink broke curl/openssl; Codex ignored the system store; "
    "issue 19 (read in pipelock's source): the bottle CAs were RSA-2048, which "
    "pipelock's LoadCA refuses "
    "(internal/certgen/certgen.go LoadCA, parseECPrivateKeyBlock)",
)
LIVE_FAILCLOSED = Clause(
    "LIVE-FAILCLOSED", MUST,
    "With pipelock stopped the agent MUST have no egress at all.",
    LIVE, Capability.LIVE,
    "DESIGN §5 (anchors)",
)
LIVE_TEARDOWN = Clause(
    "LIVE-TEARDOWN", MUST,
    "close() MUST remove every container, network, machine and state dir launch "
    "created, also after a failed launch, and MUST NOT touch anything else.",
    LIVE, Capability.LIVE,
    "DESIGN §5 (anchors); csi-test resources.go cleanup",
)

LIVE_HOST = Clause(
    "LIVE-HOST", MUST,
    "A host service listening on every host address (0.0.0.0 and ::) MUST be "
    "unreachable from the guest, as node and as root, through each of its gateways, "
    "each host address and each IPv6 neighbour (link-local, found by neighbour "
    "discovery), with ordinary sockets and, where the guest may open them, raw ones "
    "(no hand-framed UDP datagram to any host address and no hand-made TCP handshake "
    "may arrive).",
    LIVE, Capability.LIVE,
    "issue 10 (an --internal docker network still gives the host an address: the "
    "gateway); issue 16 (root with NET_RAW framed UDP to every host address and "
    "completed a TCP handshake via the bridge's IPv6 link-local)",
)
LIVE_ROUTES = Clause(
    "LIVE-ROUTES", MUST,
    "The guest's routing table MUST hold no default route and no route via a "
    "gateway, and no subnet it reaches directly may hold an address of the host.",
    LIVE, Capability.LIVE,
    "issue 10 (a routable agent network gives real NAT out, which no probe may dial)",
)
LIVE_CONFINE = Clause(
    "LIVE-CONFINE", MUST,
    "The guest MUST hold no container-engine socket and MUST have no host filesystem "
    "mounted beyond the engine's own resolv.conf, hostname and hosts files and the "
    "mounts the backend declares (Bottle.guest_mounts).",
    LIVE, Capability.LIVE,
    "issue 10 (engine socket or host paths mounted into the guest)",
)
# --- issue 20: the live tier's blind spots (DNS, exact endpoints, CA keys, bottles apart) ---

LIVE_DNS = Clause(
    "LIVE-DNS", MUST,
    "A name lookup from the guest MUST NOT leave the bottle: a unique name under the "
    "harness's canary zone, asked through getaddrinfo and over UDP and TCP port 53 of "
    "every resolver the guest names (resolv.conf, its gateways, neighbours and "
    "endpoints), MUST get no answer and MUST never reach the harness's resolver canary.",
    LIVE, Capability.LIVE,
    "issue 20 and issue 14 item 4 (a DNS forwarder the guest reaches: lookups and "
    "exfiltration in query names that no proxy sees)",
)
LIVE_ENDPOINTS = Clause(
    "LIVE-ENDPOINTS", MUST,
    "The guest MUST reach exactly its declared agent-facing endpoints (the first hop "
    "in HTTPS_PROXY, the git insteadOf targets, the MCP URLs), each on its declared "
    "port: no other TCP port of any address the guest names (endpoints, gateways, "
    "neighbours, resolv.conf and hosts entries) may accept a connection.",
    LIVE, Capability.LIVE,
    "issue 20, issue 16 item 2 (pipelock's metrics listener on 0.0.0.0:9090, reachable "
    "where pipelock is the first hop)",
)
LIVE_CA_KEY = Clause(
    "LIVE-CA-KEY", MUST,
    "The private key of a CA the bottle's proxies sign with (Bottle.ca_certificates) "
    "MUST NOT be anywhere in the guest's filesystem: every PEM private key in the guest "
    "is compared with each CA certificate's public key.",
    LIVE, Capability.LIVE,
    "issue 20 (provisioning copied the CA directory, key included, into ~/.config: "
    "anything in the guest could mint certificates its own TLS stack accepts)",
)
LIVE_APART = Clause(
    "LIVE-APART", MUST,
    "Two bottles launched side by side MUST NOT reach each other: from each guest, no "
    "TCP port of any of the other guest's addresses may answer (accept or reset).",
    LIVE, Capability.LIVE,
    "issue 20 (every bottle of a project also joined one shared network: each guest "
    "reached the others around both first hops)",
)

TEARDOWN_OWN = Clause(
    "TEARDOWN-OWN", MUST,
    "close() MUST remove only what its launch created, each by its exact name: no "
    "prune, no selection by a label key alone, no other name.",
    SNAPSHOT, None,
    "issue 10 (two suites, or a user's other bottles, on one engine)",
)
TEARDOWN_IDEMPOTENT = Clause(
    "TEARDOWN-IDEMPOTENT", MUST,
    "A second close() MUST succeed and MUST run no destructive command.",
    SNAPSHOT, None,
    "DESIGN §3 (closing is idempotent); issue 10",
)

# --- argv grammar and guest confinement (static; conformance/argv) -------------

SMOLVM_ARGV = Clause(
    "SMOLVM-ARGV", MUST,
    "Every smolvm invocation a backend runs MUST parse under the grammar of one "
    "supported smolvm version (1.8.0 to 1.9.3).",
    SNAPSHOT, None,
    "issue 8: machine create/delete take -n/--name since 1.0.2 and create's workload "
    "needs '--' (smolvm src/cli/machine.rs CreateCmd, DeleteCmd)",
    profile=SMOLVM,
)
SMOLVM_FROM_SIDECAR = Clause(
    "SMOLVM-FROM-SIDECAR", MUST,
    "A smolvm machine created --from F MUST name the X.smolmachine sidecar of a "
    "`smolvm pack create -o X` run earlier in the same launch, never the stub X.",
    SNAPSHOT, None,
    "issue 8: pack create -o X writes the executable stub at X and the artifact at "
    "X.smolmachine (smolvm src/cli/pack.rs:189-203); --from checks a SMOLPACK footer",
    profile=SMOLVM,
)
SMOLVM_CP_FILE = Clause(
    "SMOLVM-CP-FILE", MUST,
    "Every `smolvm machine cp` upload MUST copy one regular file (never a directory "
    "or a symlink).",
    SNAPSHOT, None,
    "issue 8: machine cp opens SRC with File::open and streams it (smolvm "
    "src/cli/machine.rs:4973); directories must travel another way",
    profile=SMOLVM,
)
SMOLVM_VERSION_FIRST = Clause(
    "SMOLVM-VERSION-FIRST", MUST,
    "A launch MUST run `smolvm --version` before its first `smolvm machine create` "
    "and refuse, creating no machine, a smolvm older than 1.8.0.",
    SNAPSHOT, None,
    "issue 8: smolvm 0.8.x to 1.7.x drop --allow-cidr for --from (unrestricted "
    "egress); fixed in 1.8.0 (commit f8a6fa62)",
    profile=SMOLVM,
)
DOCKER_ARGV = Clause(
    "DOCKER-ARGV", MUST,
    "Every docker, podman or nerdctl invocation a backend runs MUST parse under the "
    "docker CLI's grammar: a known subcommand, known flags, a value after every flag "
    "that takes one.",
    SNAPSHOT, None,
    "issue 8: a flag that takes a value is never misparsed (docker/cli flag tables; "
    "`-e -u node` sets the env entry -u)",
    profile=DOCKER_CLI,
)
GUEST_NET_INTERNAL = Clause(
    "GUEST-NET-INTERNAL", MUST,
    "The agent container MUST be created on a network of its launch (never left on "
    "the default bridge, which a later network connect does not remove) and every "
    "network it joins MUST be created --internal by the same launch.",
    SNAPSHOT, None,
    "issue 10: a guest with a default route or on the default bridge reaches the host "
    "and the world",
    profile=CONTAINER_GUEST,
)
GUEST_NET_NO_HOST_ADDR = Clause(
    "GUEST-NET-NO-HOST-ADDR", SHOULD,
    "A docker bridge network the agent joins SHOULD be created with "
    "-o com.docker.network.bridge.inhibit_ipv4=true, so the host has no address on it.",
    SNAPSHOT, None,
    "issue 10: on docker 20.10 an --internal network's gateway is a host address; a "
    "guest reached host services bound to 0.0.0.0 through it (facts file, docker)",
    profile=CONTAINER_GUEST,
)
GUEST_NO_PRIVILEGE = Clause(
    "GUEST-NO-PRIVILEGE", MUST,
    "The agent container and every exec into it MUST run without --privileged, "
    "without --cap-add except capabilities of docker's default set added back after "
    "--cap-drop ALL, none of them in the forbidden set (NET_RAW, NET_ADMIN, SYS_ADMIN, "
    "...: bottle_api.conventions.FORBIDDEN_CAPS), without a confinement switched off "
    "(--security-opt seccomp=, apparmor= or systempaths=unconfined, label=disable) and "
    "without a host device (--device, --device-cgroup-rule, --gpus).",
    SNAPSHOT, None,
    "issue 10: isolation was only checked live",
    profile=CONTAINER_GUEST,
)
GUEST_NO_HOST_NS = Clause(
    "GUEST-NO-HOST-NS", MUST,
    "The agent container MUST share no namespace with the host (no host value for "
    "--network, --pid, --ipc, --userns, --uts or --cgroupns).",
    SNAPSHOT, None,
    "issue 10: isolation was only checked live",
    profile=CONTAINER_GUEST,
)
GUEST_NO_HOST_MOUNTS = Clause(
    "GUEST-NO-HOST-MOUNTS", MUST,
    "No engine socket, and no host path beyond the guest paths the backend declares "
    "(Bottle.guest_mounts), MUST be mounted into the agent guest (docker -v/--mount "
    "bind, --volumes-from, --use-api-socket; smolvm -v, --docker-socket, --ssh-agent, "
    "and any --mount-socket but the bundle daemons' own, SMOLVM-SOCKETS).",
    SNAPSHOT, None,
    "issue 10: nothing looked at an engine socket or host mounts inside the guest",
)
GUEST_NO_HOST_GATEWAY = Clause(
    "GUEST-NO-HOST-GATEWAY", MUST,
    "The agent container MUST NOT be given a name for the host: every --add-host MUST "
    "name an address the launch gave one of its own containers (never host-gateway, "
    "the gateway of a network the launch created, or another host address).",
    SNAPSHOT, None,
    "issue 10: isolation was only checked live",
    profile=CONTAINER_GUEST,
)
PORT_NO_FIXED = Clause(
    "PORT-NO-FIXED", MUST,
    "Every port a launch publishes MUST bind a host loopback address with an "
    "engine-chosen host port (no -p HOST:..., no -P, no smolvm -p).",
    SNAPSHOT, None,
    "issue 10: fixed host ports clash and any publish off loopback exposes the bundle",
)
# --- issue 14: smolmachines with no network; the first hop through mounted sockets ---
# (smolvm-only clauses: NOT_APPLICABLE to a backend that creates no smolvm machine.)
# TSI-ALLOW-NARROW (issue 10) is retired, its ID never reused: no allow list
# is narrow enough (no port filter, DNS forwarded for any name, virtio-net's
# guest `lo` never reaches the host: smolvm 1.9.3 crates/smolvm-network).
SMOLVM_NO_NET = Clause(
    "SMOLVM-NO-NET", MUST,
    "No smolvm command MUST give the guest networking: none of --net, --net-backend, "
    "--allow-cidr, --allow-host, --outbound-localhost-only, --dns, --network or -p/--port "
    "on machine create/run/start.",
    SNAPSHOT, None,
    "issue 14: any of them makes smolvm attach TSI or virtio-net (1.9.3 "
    "src/network/launch.rs plan_launch_network, wants_network); virtio-net forwards DNS "
    "for any name and its CIDR policy has no port filter",
    profile=SMOLVM,
)
SMOLVM_SOCKETS = Clause(
    "SMOLVM-SOCKETS", MUST,
    "A smolvm machine MUST get exactly one --mount-socket per agent-facing daemon of the "
    "plan (the first hop: egress when routed, else pipelock; git-gate iff upstreams; "
    "supervise iff enabled), the host end named <daemon>.sock, each guest path distinct "
    "and absolute, and no other socket.",
    SNAPSHOT, None,
    "issue 14: a guest with no network reaches its daemons only through sockets (smolvm "
    "1.9.3 src/cli/machine.rs parse_published_sockets); an extra one is a path around "
    "the first hop, a missing one a dead daemon",
    profile=SMOLVM,
)


# --- issue 18: profiles (what a backend drives decides which clauses apply) -----

PROFILE_DECLARED = Clause(
    "PROFILE-DECLARED", MUST,
    "A backend MUST declare (Backend.profiles) exactly the profiles whose tools its "
    "recorded launches drive: docker-cli iff a command runs docker, podman or "
    "nerdctl, container-guest iff the agent exec targets a container of such an "
    "engine, smolvm iff a command runs smolvm.",
    SNAPSHOT, None,
    "issue 18: clauses about a tool a backend does not drive are NOT_APPLICABLE, so "
    "declaring fewer profiles must not dodge them (Gateway API conformance profiles; "
    "csi-test capability gating)",
)

# --- issue 16: a static clause per contract gap ----------------------------------

SECRET_STDIN = Clause(
    "SECRET-STDIN", MUST,
    "No command a backend runs (a guest exec above all) MUST be handed a token value "
    "on its standard input, literally or encoded; a token MUST reach a child only "
    "through the runner's env.",
    INVARIANT, None,
    "issue 16 (a token piped into the guest over exec stdin passed every static clause)",
)
SECRET_ERRORS = Clause(
    "SECRET-ERRORS", MUST,
    "No exception prepare(), launch() or close() raises (its message, arguments and "
    "chained causes) MUST contain a token value, literally or encoded.",
    INVARIANT, None,
    "issue 16 (the missing-token refusal listed every route's token; a failed launch "
    "re-raised with the daemon env)",
)
TEARDOWN_STATE = Clause(
    "TEARDOWN-STATE", MUST,
    "A normal close() MUST remove the bottle's state dir (its CA keys, configs and "
    "everything else in it).",
    SNAPSHOT, None,
    "issue 16 (a close that left the state dir with the CA keys was caught only live)",
)
PROV_WORKDIR = Clause(
    "PROV-WORKDIR", MUST,
    "agent_argv MUST set the agent's working directory explicitly to /home/node or a "
    "directory under it.",
    SNAPSHOT, None,
    "issue 16 (no clause covered the agent's workdir); DESIGN §4",
)
PROV_CRED_OWNER = Clause(
    "PROV-CRED-OWNER", MUST,
    "Each credential placeholder the backend puts in the guest (Codex auth.json, "
    "Claude .credentials.json) MUST end up owned by node with mode 0600.",
    SNAPSHOT, None,
    "issue 16 (no clause covered who owns the credential placeholders)",
)
PROV_CA_KEYS = Clause(
    "PROV-CA-KEYS", MUST,
    "Each CA private key a launch generates MUST be handed only to the daemon whose CA "
    "it is (egress's key at egress's key path, pipelock's at pipelock's), and no CA "
    "private key MUST be copied or mounted into the agent guest.",
    SNAPSHOT, None,
    "issue 16 (no clause covered which daemon gets which CA private key)",
)


# --- issue 17: faults, round 2 (teardown proof, hangs, secrets in output) -------

TEARDOWN_LOUD = Clause(
    "TEARDOWN-LOUD", MUST,
    "close() against an engine that cannot answer (every command failing, e.g. "
    "unreachable) MUST raise, naming what may remain, and MUST NOT report the bottle "
    "gone: a failed inspect is no proof that nothing exists.",
    SNAPSHOT, None,
    "issue 17: `bottle-ref down` with the engine unreachable exited 0 and forgot a "
    "running bottle (a failed docker inspect read as \"none exist\")",
)

# --- issue 15: egress and pipelock as real gatekeepers ---------------------------

LIVE_EGRESS_ONE_NAME = Clause(
    "LIVE-EGRESS-ONE-NAME", MUST,
    "egress MUST inject a route's token only into a request whose CONNECT target, TLS "
    "SNI and inner Host all name the route host, and MUST refuse (forwarding nothing) "
    "a request in which they disagree, whatever names the guest chooses.",
    LIVE, Capability.LIVE,
    "issue 15: CONNECT to a route host with SNI and Host of another host delivered the "
    "real token to that host (a shared CDN edge routes by SNI/Host)",
)
LIVE_NO_FRONTING = Clause(
    "LIVE-NO-FRONTING", MUST,
    "The first hop MUST NOT forward a request that names a host outside the allowlist "
    "inside a connection to an allowed host: CONNECT with a mismatched SNI or Host, a "
    "plain request whose Host differs from its URI, a CONNECT to port 80 with another "
    "Host inside.",
    LIVE, Capability.LIVE,
    "issue 15: domain fronting through pipelock; pipelock source: internal/proxy/sni.go "
    "verifySNI, internal/proxy/intercept.go authority check",
)
LIVE_HOST_CANON = Clause(
    "LIVE-HOST-CANON", MUST,
    "A trailing-dot or case variant of a route host MUST NOT put the real token in front "
    "of pipelock's DLP decrypted, nor deliver it anywhere but the route host: egress and "
    "pipelock MUST agree on which names are the route host.",
    LIVE, Capability.LIVE,
    "issue 15: egress stripped a trailing dot when matching routes, pipelock's "
    "isPassthrough (internal/proxy/intercept.go) does not, so the token was decrypted",
)
LIVE_ALLOWLIST_ONLY = Clause(
    "LIVE-ALLOWLIST-ONLY", MUST,
    "No host outside the bottle's allowlist MUST answer through the first hop, over "
    "http or https, including the proxies' own built-in hosts (mitmproxy's mitm.it).",
    LIVE, Capability.LIVE,
    "issue 15: mitmproxy's onboarding app answered mitm.it with the CA before any "
    "allowlist check",
)

# --- issue 16: guest hardening (live) --------------------------------------------

LIVE_PRIVS = Clause(
    "LIVE-PRIVS", MUST,
    "The backend MUST declare the guest's privileges (Bottle.guest_privileges): root's "
    "capabilities, none of them forbidden (NET_RAW, NET_ADMIN, SYS_ADMIN, ...), "
    "NoNewPrivs set, and finite memory, pids and CPU limits; and inside the guest, "
    "/proc/self/status of a root and a node exec and the guest's cgroup limits MUST "
    "match that declaration (node holding no capability at all).",
    LIVE, Capability.LIVE,
    "issue 16 (the reference guest kept docker's default capabilities, NET_RAW "
    "included, without no-new-privileges or any memory, pids or CPU limit)",
    profile=CONTAINER_GUEST,
)
LIVE_ROOT_EXEC_CLEAN = Clause(
    "LIVE-ROOT-EXEC-CLEAN", MUST,
    "A root exec into the guest (plain `python3 -c`, from a shell, and the suite's own "
    "root probes) MUST NOT import a module node planted (json.py, sitecustomize.py, "
    "usercustomize.py in node's workdir, HOME or user site-packages).",
    LIVE, Capability.LIVE,
    "issue 16 (root execs started in /home/node/work, the image's WORKDIR, and "
    "`python3 -c` imported a planted json.py as uid 0)",
)




# --- issue 15 (second pass): pipelock's SSRF guard, live ---
LIVE_SSRF = Clause(
    "LIVE-SSRF", MUST,
    "The bottle's last hop MUST refuse a request, plain or CONNECT, from node or root, "
    "for an allowlisted host that resolves to an internal address (loopback, RFC 1918, "
    "link-local, ...: pipelock's SSRF guard) unless the host context named that host "
    "in BOTTLE_PIPELOCK_TRUSTED_HOSTS.",
    LIVE, Capability.LIVE,
    "issue 15: pipelock refuses such hosts by default (internal/scanner/scanner.go "
    "checkSSRF; internal/config/normalize.go internal); the stand-in did not",
)

CLAUSES: tuple[Clause, ...] = tuple(
    value for name, value in list(globals().items())
    if isinstance(value, Clause) and name == value.id.replace("-", "_")
)

_BY_ID: Mapping[str, Clause] = {c.id: c for c in CLAUSES}


def by_id(clause_id: str) -> Clause:
    """The clause with this ID; `KeyError` naming close matches otherwise."""
    try:
        return _BY_ID[clause_id]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(str(clause_id), list(_BY_ID), n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise KeyError(f"unknown clause {clause_id!r}{hint}") from None


# Each bug the seed histories describe, and the clauses that would have caught it.
SEED_MAP: Mapping[str, tuple[str, ...]] = {
    "codex placeholder token exp was now+1h, Codex refreshed and dropped to sign-in":
        ("CRED-EXP",),
    "codex (rustls) ignored the system CA store and NODE_EXTRA_CA_CERTS":
        ("CRED-CA", "LIVE-CA-TRUST"),
    "pipelock header DLP flagged the bearer egress injected; 429 retry storm":
        ("PIPELOCK-PASS", "PIPELOCK-PASS-CODEX"),
    "git user config written to /root/.gitconfig (runuser kept HOME=/root)":
        ("PROV-GITUSER", "EXEC-USER"),
    "smolmachines prepare built and packed the image before the operator confirmed":
        ("PLAN-PURE", "LAUNCH-PACK-IN-LAUNCH"),
    "supervise MCP registered in root's ~/.claude.json, not node's":
        ("PROV-MCP-USER", "EXEC-USER"),
    "agent dialled pipelock directly, bypassing egress (401 Invalid bearer token)":
        ("PLAN-HOP", "PORT-EGRESS-ONLY-WHEN-ROUTED", "LAUNCH-PROXY-ENV", "LIVE-AUTH"),
    "update-ca-certificates SIGKILLed by the exec warm-up race, unnoticed":
        ("LAUNCH-READY", "PROV-CA", "PROV-CA-ONE-ADDED", "LIVE-CA-TRUST"),
    "bundle bridge IP unreachable from the guest on Docker Desktop":
        ("PORT-LOOPBACK", "LIVE-PIPELOCK", "LIVE-SMOKE"),
    "prompt and skills provisioned under /root instead of /home/node":
        ("PROV-PROMPT", "PROV-SKILLS", "EXEC-USER"),
    "bundle daemons idled: daemons list empty, config never wired":
        ("PLAN-DAEMONS", "LIVE-PIPELOCK"),
    "agent could dial egress's port on the bundle IP and skip pipelock":
        ("LIVE-BYPASS", "PORT-EGRESS-ONLY-WHEN-ROUTED"),
    "pty_resize run as python -m failed in a tmux pane outside the repo":
        ("EXEC-PTY-ABS",),
    "smolvm exec -t never forwarded the window size; wrapper must stay TTY-only":
        ("EXEC-TTY",),
    "claude_docker_argv existed only on DockerBottle (AttributeError on smolmachines)":
        ("EXEC-ABI", "EXEC-RESUME"),
    "every pipelock.yaml was mode balanced: real pipelock would not enforce the allowlist":
        ("PIPELOCK-ENFORCE", "LIVE-PIPELOCK"),
    "egress routed by CONNECT target only; SNI/Host of another host got the token":
        ("LIVE-EGRESS-ONE-NAME",),
    "a trailing dot split egress's route match from pipelock's passthrough match":
        ("LIVE-HOST-CANON",),
}


# What the contract knowingly does not guarantee. Each entry: (title, text).
# Rendered into CONTRACT.md so a backend author reads the limits beside the rules.
RESIDUAL_RISKS: tuple[tuple[str, str], ...] = (
    (
        "The reference pipelock is pipelock-compatible, not pipelock",
        "The bundle's proxy loads pipelock.yaml by pipelock's rules (known keys, its "
        "validators, RE2 regexes, the CA key mode) and enforces as pipelock does: the "
        "api_allowlist only in mode strict (an empty list allows every host), "
        "MatchDomain wildcards for the allowlist and isPassthrough wildcards for "
        "passthrough_domains, header DLP (header_mode sensitive by default, CONNECT "
        "headers too, patterns compiled (?i)), the per-base-domain rate limit (429, 60 "
        "by default), the SSRF guard (on by default; trusted_domains and ssrf.ip_allowlist "
        "exempt) and the tunnel limits (max_tunnel_seconds, idle_timeout_seconds); a parity "
        "table cites pipelock's source for each rule. It does not implement URL or body "
        "DLP, response scanning, built-in DLP patterns, scan_env, URL length or entropy "
        "checks, nor pipelock's dial-time SSRF re-check (a name that re-resolves between "
        "the check and mitmproxy's dial is not caught). Reports name it (`pipelock: "
        "stand-in`). Swap the bundle image for real pipelock where those matter.",
    ),
    (
        "docker: the host behind the agent's bridge",
        "The reference docker backend creates the agent and bundle networks with "
        "`com.docker.network.bridge.inhibit_ipv4=true` (the host gets no address on "
        "them) and deletes the agent's default routes from a helper container, so on "
        "Docker Engine (checked: 20.10 on Linux, rootful) the guest cannot connect to "
        "any host service. Not checked: Docker Desktop (the engine runs in a VM; "
        "`host.docker.internal` and the VM's own services are reached by other paths "
        "than the bridge) and rootless docker (networking through slirp4netns or "
        "pasta, where the bridge option may not apply). LIVE-HOST and LIVE-ROUTES "
        "show on such an engine whether it holds. docker's embedded DNS (127.0.0.11) "
        "answers the guest and forwards names it does not know to the engine's resolvers, "
        "dialled from the guest's own network namespace (libnetwork resolver.go ServeDNS, "
        "20.10), where the agent has no route; a host resolver on loopback is dialled from "
        "the host's namespace instead, and on such a host LIVE-DNS is NOT_SUPPORTED (the "
        "live tier then sends the guest's resolver no lookup).",
    ),
    (
        "Secrets scanned by shape",
        "LIVE-AUTH looks for the harness's token shape (raw, base64 in any "
        "alignment, hex, percent-encoded) in every file of the guest but /proc, "
        "/sys and /dev (reading only files changed since the token existed) and in "
        "every process's environ and cmdline. A token encrypted, compressed or split "
        "is not found.",
    ),
    (
        "egress injects over TLS only",
        "The reference egress rewrites credentials only on HTTPS requests (matched on "
        "the CONNECT target, not the Host header), never over cleartext HTTP.",
    ),
    (
        "smolmachines: the guest is created from a `docker save` archive",
        "The reference backend targets smolvm >= 1.8.0 and refuses older ones at launch "
        "(every flag it uses exists there; --mount-socket since v1.6.4). It creates the machine with `-I <absolute path>.tar`, "
        "a `docker save` of the local agent image, which smolvm (since v1.1.0, eb6aecfd; "
        "src/data/image_source.rs `classify`) takes as a local archive: no registry. It does "
        "not use `pack create`, which pulls its `-I` from a registry inside a temporary VM "
        "(src/cli/pack.rs `pull_with_progress`), so a locally built tag is not found there. "
        "Cost: one `docker save` per agent image ID (cached), and smolvm flattens the archive "
        "when creating each machine. Directories (skills, `<cwd>/.git`) travel as a tar "
        "stream into `machine exec -i` (`machine cp` copies one regular file), extracted "
        "without host owners and chowned to node afterwards.",
    ),
    (
        "smolmachines on the CI stand-in",
        "Where no smolvm is on PATH, `nox -s integration` runs the smolmachines guest half "
        "on a test-only stand-in (tests/standins/smolvm) that enforces smolvm 1.9.3's "
        "grammar, machine names and file semantics and runs each machine as a container of "
        "the engine with no network (`--network none`, what smolvm gives a machine without "
        "--net), each `--mount-socket` a bind mount of the host socket. The live clauses run "
        "there against the real relays and bundle, and the report says `smolvm: stand-in`. "
        "The stand-in refuses smolvm networking (--net, --allow-cidr, -p, ...) as not "
        "modelled, so a backend that uses it is NOT_SUPPORTED there, never PASSED.",
    ),
    (
        "git-gate serves local bare repositories",
        "The reference git-gate is git's own daemon over bare repositories in the "
        "bundle; mirroring them to the real upstreams with the declared identities is "
        "outside the reference implementation.",
    ),
    (
        "Codex's places, as of Codex 0.169.0",
        "PROV-CODEX-* follow codex-rs as the pinned Codex 0.169.0 reads it: global "
        "instructions from $CODEX_HOME/AGENTS.md (an AGENTS.override.md there, e.g. baked "
        "into an agent image, would shadow the bottle's prompt), user skills from "
        "$HOME/.agents/skills ($CODEX_HOME/skills is the deprecated root), MCP servers from "
        "[mcp_servers.<name>] in $CODEX_HOME/config.toml. A Codex release that moves one of "
        "them needs the conventions and these clauses moved with it. The live tier sees "
        "Codex send the prompt and list the skill, and dials supervise from the guest at "
        "the URL Codex has; it does not see Codex call a supervise tool (the requests "
        "`codex exec` 0.169.0 sent the API stand-in carried no `tools` list at all).",
    ),
    (
        "A route host that echoes request headers (issue 15)",
        "egress puts the real token into requests to the route host, so a route host that "
        "echoes request headers (a debugging endpoint, an error page quoting the request) "
        "hands the token back to the guest; no proxy check can tell. Declare routes only "
        "for API hosts that never reflect credentials, keep the route's header narrow "
        "(one header, one host, no wildcard route), and rotate a token a bottle may have "
        "seen.",
    ),
    (
        "Real pipelock's name checks (issue 15)",
        "Read in luckyPipewrench/pipelock (HEAD 40865129): pipelock checks the ClientHello "
        "SNI against the CONNECT target on every CONNECT (internal/proxy/sni.go verifySNI, "
        "default on) but lets a ClientHello without SNI, or a non-TLS stream, through; for "
        "a passthrough host it then splices bytes, so cleartext HTTP inside a CONNECT to a "
        "passthrough host (e.g. port 80) is not host-checked. The inner Host is checked only "
        "for decrypted tunnels (internal/proxy/intercept.go authority check). isPassthrough "
        "does not strip a trailing dot, so `host.` is decrypted. egress's own check (all "
        "three names, canonical spelling, SNI required) carries the weight for route hosts. "
        "The bundle's stand-in also refuses a plain request whose Host differs from its URI "
        "(Go's net/http server ignores such a Host; mitmproxy would forward it). It models "
        "pipelock's SSRF guard (a host resolving to an internal address is refused, "
        "allowlisted or not) and its tunnel limits (300 s, 120 s idle for relayed tunnels), "
        "but not its built-in DLP patterns, scan_env, URL length or entropy checks. The live "
        "tier reaches its test upstream on a private docker network through the guard only "
        "by naming those sites in BOTTLE_PIPELOCK_TRUSTED_HOSTS (rendered as pipelock's "
        "trusted_domains); PIPELOCK-ENFORCE fails any other exemption. Declared hosts are "
        "canonicalised by the spec loader (case, trailing dot, IDNA); real pipelock still "
        "matches passthrough_domains without trimming a dot (`host.` is decrypted), and "
        "egress injects only for the canonical spelling, so no token meets that rule.",
    ),
    # --- issue 20 ---
    (
        "What the exposure probes see (LIVE-DNS, LIVE-ENDPOINTS, LIVE-CA-KEY, LIVE-APART)",
        "The probes find addresses the way the guest names them: its routes' gateways, its "
        "ARP neighbours, resolv.conf and /etc/hosts entries and the hosts of its declared "
        "endpoints; a peer the guest never talked to and nothing names is not found (no "
        "address range is ever scanned). Each address is swept on every TCP port unless its "
        "first 2048 ports draw neither a connection nor a reset (then only well-known ports "
        "are tried); UDP ports and IPv6 neighbours are not swept. LIVE-DNS sees a lookup "
        "leave only where a path answers for the canary zone or ends at the harness's "
        "canary: a forwarder to some other resolver that answers NXDOMAIN is not told apart "
        "from a local refusal. LIVE-CA-KEY matches RSA moduli and EC points of PEM keys in "
        "files of up to 1 MiB changed since the run began; a key encrypted, in DER, or in "
        "a larger file is not found.",
    ),
    (
        "Guest hardening: what root keeps, and the microVM",
        "The docker reference guest keeps CHOWN, FOWNER and DAC_OVERRIDE for root execs "
        "(provisioning, and root reading node's 0600 files); root in the guest can still "
        "read and rewrite every file of node's. The bundle containers are not hardened "
        "the same way (they hold the real tokens but not the agent). A smolmachines "
        "guest declares no Bottle.guest_privileges(): root in the machine holds its own "
        "kernel's capabilities (NET_RAW included) and its limits are the machine's "
        "--cpus/--mem; LIVE-PRIVS (capabilities and cgroup limits shared with the host "
        "kernel) is a container-guest clause, NOT_APPLICABLE to a microVM (issue 16).",
    ),
    # --- issue 14 ---
    (
        "smolmachines: the sockets' routes, and what only real smolvm shows",
        "The smolmachines guest has no network: no smolvm flag that implies one (SMOLVM-NO-NET), "
        "so smolvm attaches no network backend (src/network/launch.rs, "
        "EffectiveNetworkBackend::None) and the guest has only `lo` and no DNS path. Each "
        "agent-facing daemon reaches it through one `--mount-socket <root>/<ident>/"
        "<daemon>.sock:/run/bottle/<daemon>.sock` (SMOLVM-SOCKETS; root is $XDG_RUNTIME_DIR, "
        "else /tmp, since a socket path is limited to 104-108 bytes; the folder is 0700 "
        "and removed by close()); in the guest a root-owned "
        "relay (/usr/local/lib/bottle/socket_relay.py, stdlib only, restarted by a shell "
        "loop) listens on 127.0.0.1:<daemon port> and forwards to the socket. On Linux "
        "(route `bind-mount`) the bundle container mounts that folder and its own "
        "relay listens on the sockets, forwarding to the daemons' 127.0.0.1 ports: the bundle "
        "publishes no port. On macOS (route `host-relay`; Docker Desktop's engine runs in a "
        "VM and does not pass Unix sockets through bind mounts) the bundle publishes each "
        "agent-facing port on host 127.0.0.1 with an engine-chosen port and a host relay "
        "the launch starts (pid file in the state dir, stopped by close()) serves the "
        "sockets; any local process can dial those published ports, as on docker. "
        "`BOTTLE_SMOL_SOCKET_ROUTE` overrides the choice. Only a run on real smolvm shows "
        "the vsock bridge itself (libkrun dialling the host socket per guest connection, "
        "src/agent/launcher.rs), the guest agent's socket at GUEST_PATH, the relay surviving "
        "`machine exec` and a VM restart (it is started at provisioning, not by `--init`), "
        "and the macOS route end to end: CI has no hardware virtualization and runs the "
        "stand-in, whose bind mount stands for the vsock bridge. While the guest relay "
        "restarts (one second), a process of node's could bind its port first and see "
        "node's own traffic to the first hop.",
    ),
)
