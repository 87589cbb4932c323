"""Every fact the contract, the reference and the bundle share, in one place.

Ports, daemon names, the guest's user and paths, the bundle image's
interface (mount paths, env names, entry command) and the resource label
key. The suite reads these to know what to check; the reference reads them
to know what to build; the bundle daemons read them to know where their
config is. CONTRACT.md renders `TABLE` (``bottle-conformance contract``).

Stdlib only: the bundle image imports this module too.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- the bundle daemons (DESIGN §1) ----------------------------------------
PIPELOCK, EGRESS, GIT_GATE, SUPERVISE = "pipelock", "egress", "git-gate", "supervise"
DAEMON_NAMES: tuple[str, ...] = (PIPELOCK, EGRESS, GIT_GATE, SUPERVISE)
PORTS: Mapping[str, int] = {PIPELOCK: 8888, EGRESS: 9099, GIT_GATE: 9418, SUPERVISE: 9100}

# The bundle image's launcher: ``bottle-bundle <daemon>[,<daemon>...]``.
BUNDLE_ENTRY = "bottle-bundle"

# -- the guest (DESIGN §4) --------------------------------------------------
NODE = "node"
ROOT = "root"
NODE_HOME = "/home/node"
ROOT_HOME = "/root"
PROMPT_PATH = "/home/node/.claude-bottle-prompt.txt"
SKILLS_DIR = "/home/node/.claude/skills"
WORKDIR = "/home/node/work"
CLAUDE_CONFIG = "/home/node/.claude.json"  # `claude mcp add --scope user` writes here
GITCONFIG = "/home/node/.gitconfig"
CODEX_AUTH_GUEST = "/home/node/.codex/auth.json"
# Codex reads its own places (codex-rs, checked against the pinned 0.169.0):
# user config and MCP servers in $CODEX_HOME/config.toml (`codex mcp add`,
# cli/src/mcp_cmd.rs run_add); global instructions in $CODEX_HOME/AGENTS.md
# (core/src/agents_md.rs AgentsMdManager::load_global_instructions); user
# skills in $HOME/.agents/skills/<name>/SKILL.md (core-skills/src/loader.rs
# skill_roots_from_layer_stack_inner; $CODEX_HOME/skills is the deprecated one).
CODEX_HOME_GUEST = "/home/node/.codex"
CODEX_CONFIG = "/home/node/.codex/config.toml"
CODEX_PROMPT_PATH = "/home/node/.codex/AGENTS.md"
CODEX_SKILLS_DIR = "/home/node/.agents/skills"
CLAUDE_CREDENTIALS_GUEST = "/home/node/.claude/.credentials.json"
# The agent CA lands here; update-ca-certificates folds it into CA_BUNDLE.
CA_GUEST_PATH = "/usr/local/share/ca-certificates/bottle-egress.crt"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Codex is rustls and ignores the system store: it reads this (custom_ca.rs).
CODEX_CA_ENV = "CODEX_CA_CERTIFICATE"



def prompt_path_for(agent: str) -> str:
    """Where the bottle's prompt lands for ``agent`` (claude: the file
    --append-system-prompt-file names; codex: its global AGENTS.md)."""
    return CODEX_PROMPT_PATH if agent == "codex" else PROMPT_PATH


def skills_dir_for(agent: str) -> str:
    """The directory ``agent`` loads user skills from (one ``<name>`` each)."""
    return CODEX_SKILLS_DIR if agent == "codex" else SKILLS_DIR


# -- guest hardening (issue 16) ------------------------------------------------
# Capabilities a container guest keeps after ``--cap-drop ALL``. Only root
# execs ever hold them (`docker exec -u node` starts node with none):
#   CHOWN         provisioning's `chown` of the CA, the credential
#                 placeholders, the prompt file, skills and the workdir;
#   FOWNER        provisioning's `chmod` of those files once node owns them;
#   DAC_OVERRIDE  root execs that read or repair node's 0600/0700 files (the
#                 suite's secret scan and ownership checks, an operator's
#                 `bottle-ref exec --user root`).
# No SETUID/SETGID: docker exec switches user itself (runc), and nothing in
# a docker guest runs runuser/su. A guest whose root execs need runuser
# (smolvm: `machine exec` is always root) adds SETUID and SETGID. Never
# NET_RAW (raw frames reach the host past every route: issue 16), NET_ADMIN
# or SYS_ADMIN.
GUEST_CAPS: tuple[str, ...] = ("CHOWN", "DAC_OVERRIDE", "FOWNER")
# Capabilities no guest may hold (LIVE-PRIVS, GUEST-NO-PRIVILEGE).
FORBIDDEN_CAPS: frozenset[str] = frozenset({
    "NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO",
    "SYS_BOOT", "SYS_TIME", "DAC_READ_SEARCH", "MAC_ADMIN", "MAC_OVERRIDE", "BPF",
    "PERFMON", "SYSLOG", "NET_BROADCAST", "MKNOD", "SETFCAP", "SETPCAP", "LINUX_IMMUTABLE",
    "IPC_OWNER", "SYS_RESOURCE", "AUDIT_CONTROL", "WAKE_ALARM", "BLOCK_SUSPEND",
    "CHECKPOINT_RESTORE", "SYS_PACCT", "SYS_NICE", "SYS_TTY_CONFIG", "LEASE", "IPC_LOCK",
    "AUDIT_READ"})
# Default guest limits when the spec's `limits` leaves them out.
DEFAULT_MEMORY_MIB = 4096
DEFAULT_PIDS = 4096
DEFAULT_CPUS = 2.0
# Root execs start here (never node's workdir or HOME) and run python as
# ``python3 -I`` (no cwd, no PYTHON* env, no user site on sys.path).
ROOT_EXEC_WORKDIR = "/"

# -- the bundle image interface (mounted config, env) ------------------------
PIPELOCK_CONFIG_PATH = "/etc/pipelock/pipelock.yaml"
PIPELOCK_CA_CERT = "/etc/pipelock/ca.pem"
PIPELOCK_CA_KEY = "/etc/pipelock/ca-key.pem"
EGRESS_ROUTES_PATH = "/etc/egress/routes.yaml"
EGRESS_CA_CERT = "/etc/egress/ca.pem"
EGRESS_CA_KEY = "/etc/egress/ca-key.pem"
EGRESS_UPSTREAM_ENV = "EGRESS_UPSTREAM_PROXY"
EGRESS_LISTEN_ENV = "EGRESS_LISTEN"
# Egress reads real tokens from bare env names BOTTLE_EGRESS_TOKEN_<i>.
EGRESS_TOKEN_SLOT_PREFIX = "BOTTLE_EGRESS_TOKEN_"
# egress's upstream is pipelock on the bundle's own loopback (auth-chain fix).
EGRESS_UPSTREAM_PROXY = "http://127.0.0.1:8888"
GIT_GATE_ROOT = "/srv/git"
SUPERVISE_SERVER_NAME = "supervise"
SUPERVISE_MCP_PATH = "/mcp"
SUPERVISE_LISTEN_ENV = "SUPERVISE_LISTEN"

# Host env var naming a PEM bundle the bottle's proxies must trust for
# upstream TLS on top of the system store (the live tier's test upstream).
UPSTREAM_CA_ENV = "BOTTLE_UPSTREAM_CA_FILE"
# ... and the bundle env vars through which each proxy reads that bundle
# (os.pathsep-separated paths inside the bundle): a backend that implements
# `Bottle.outbound_network` MUST set both to the file it mounts or copies in.
PIPELOCK_UPSTREAM_CA_ENV = "PIPELOCK_UPSTREAM_CA"
EGRESS_UPSTREAM_CA_ENV = "EGRESS_UPSTREAM_CA"


# Host env var: comma-separated exact host names the bottle's pipelock may
# reach although they resolve to internal addresses (rendered as pipelock's
# ``trusted_domains``, exempt from its SSRF guard: internal/scanner/scanner.go
# checkSSRF, IsTrustedDomain). Unset (production), nothing is exempt. The live
# tier sets it to its test upstream's names, which live on a private docker
# network that real pipelock would otherwise refuse. Wildcards are refused.
PIPELOCK_TRUSTED_HOSTS_ENV = "BOTTLE_PIPELOCK_TRUSTED_HOSTS"

# -- engine resources ---------------------------------------------------------
# Every engine object a reference bottle makes carries LABEL_KEY=<bottle ident>.
LABEL_KEY = "bottle-ref.bottle"


def _rows() -> list[tuple[str, str, str]]:
    rows = [(f"port of {d}", str(PORTS[d]), "bundle daemon's container port") for d in DAEMON_NAMES]
    rows += [
        ("bundle entry", BUNDLE_ENTRY, "`bottle-bundle <daemon>[,...]` starts the daemons"),
        ("agent user", f"{NODE} (HOME={NODE_HOME})", "agent and user-state commands"),
        ("prompt file", PROMPT_PATH, "claude: mode 0600, owner node"),
        ("skills dir", SKILLS_DIR, "claude: `<name>` per skill, owned by node"),
        ("codex prompt", CODEX_PROMPT_PATH, "codex's global instructions; mode 0600, owner node"),
        ("codex skills dir", CODEX_SKILLS_DIR, "codex: `<name>` per skill, owned by node"),
        ("codex user config", CODEX_CONFIG, "codex: `[mcp_servers.<name>]` url, owned by node"),
        ("workdir", WORKDIR, "the host cwd's `.git` lands here"),
        ("claude user config", CLAUDE_CONFIG, "MCP registration, onboarding, trust"),
        ("codex auth", CODEX_AUTH_GUEST, "placeholder only"),
        ("claude credentials", CLAUDE_CREDENTIALS_GUEST, "placeholder only"),
        ("agent CA", CA_GUEST_PATH, "then `update-ca-certificates` (`1 added`)"),
        ("CA bundle", CA_BUNDLE, f"`{CODEX_CA_ENV}` points here for codex"),
        ("pipelock config", PIPELOCK_CONFIG_PATH, "pipelock's own keys"),
        ("egress routes", EGRESS_ROUTES_PATH, f"tokens from `{EGRESS_TOKEN_SLOT_PREFIX}<i>`"),
        ("egress upstream", EGRESS_UPSTREAM_PROXY, f"`{EGRESS_UPSTREAM_ENV}`: pipelock"),
        ("upstream CA (host)", UPSTREAM_CA_ENV,
         "host env var: a PEM bundle both proxies trust upstream (outbound_network MUST honour)"),
        ("pipelock upstream CA", PIPELOCK_UPSTREAM_CA_ENV,
         "bundle env var: paths of that bundle as pipelock reads it"),
        ("egress upstream CA", EGRESS_UPSTREAM_CA_ENV,
         "bundle env var: paths of that bundle as egress reads it"),
        ("supervise MCP path", SUPERVISE_MCP_PATH, f"server name `{SUPERVISE_SERVER_NAME}`"),
        ("label key", LABEL_KEY, "on every engine object a reference bottle makes"),
        ("guest capabilities", ", ".join(GUEST_CAPS),
         "all a container guest keeps after `--cap-drop ALL`, with no-new-privileges: "
         "CHOWN/FOWNER for provisioning's chown/chmod, DAC_OVERRIDE for root execs that "
         "read node's 0600 files; never NET_RAW"),
        ("guest limits", f"{DEFAULT_MEMORY_MIB} MiB, {DEFAULT_PIDS} pids, {DEFAULT_CPUS:g} CPUs",
         "defaults of the spec's `limits` (memory_mib, pids, cpus)"),
        ("root exec workdir", ROOT_EXEC_WORKDIR,
         "root execs never start in node's workdir; python as `python3 -I`"),
    ]
    return rows


# (fact, value, note): rendered into CONTRACT.md.
TABLE: tuple[tuple[str, str, str], ...] = tuple(_rows())
