# Agent guest (DESIGN §4): user node (uid 1000, HOME /home/node), runuser,
# ca-certificates + update-ca-certificates, curl, git, python3 (live probes
# use it), nodejs + npm, and the real agent CLIs: Claude Code and Codex.
#
# Built FROM the debootstrap base (no registry). Debian packages come from
# the Debian mirror over plain http; the CLIs' npm tarballs are fetched on
# the host with `npm pack` (build containers cannot verify TLS to npm behind
# an intercepting proxy) and installed with npm --offline in a throwaway
# stage, so the 175 MB of tarballs never become a layer of the image.
ARG BASE
FROM ${BASE} AS node
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --home-dir /home/node --uid 1000 --user-group --shell /bin/bash node \
 && install -d -o node -g node -m 0755 /home/node/work

FROM node AS claude
COPY npm/ /tmp/npm/
# The native package first: the wrapper's postinstall puts its binary at
# bin/claude.exe (a hard link), which is all the CLI needs at run time.
RUN npm install --global --offline --no-audit --no-fund --loglevel=error \
        /tmp/npm/claude-code-native.tgz /tmp/npm/claude-code.tgz

FROM node AS codex
COPY codex/ /tmp/codex/
# The wrapper without its optional platform dependency (offline, nothing to
# fetch), then the platform package's vendor/ where bin/codex.js falls back
# to looking for it (<package>/vendor/<target triple>/bin/codex).
RUN npm install --global --offline --omit=optional --no-audit --no-fund --loglevel=error \
        /tmp/codex/codex.tgz \
 && mkdir -p /tmp/codex/native \
 && tar -xzf /tmp/codex/codex-native.tgz -C /tmp/codex/native \
 && mv /tmp/codex/native/package/vendor /usr/local/lib/node_modules/@openai/codex/vendor

FROM node
COPY --from=claude /usr/local/lib/node_modules/@anthropic-ai/claude-code /usr/local/lib/node_modules/@anthropic-ai/claude-code
COPY --from=codex /usr/local/lib/node_modules/@openai/codex /usr/local/lib/node_modules/@openai/codex
# The checks fail the build if a CLI did not install.
RUN ln -s ../lib/node_modules/@anthropic-ai/claude-code/bin/claude.exe /usr/local/bin/claude \
 && ln -s ../lib/node_modules/@openai/codex/bin/codex.js /usr/local/bin/codex \
 && claude --version \
 && claude mcp add --help >/dev/null \
 && codex --version \
 && codex exec --help >/dev/null \
 && rm -rf /root/.claude /root/.claude.json /root/.codex
# The CLI version is pinned by the image tag; never self-update in a bottle.
ENV DISABLE_AUTOUPDATER=1
WORKDIR /home/node/work
CMD ["sleep", "infinity"]
