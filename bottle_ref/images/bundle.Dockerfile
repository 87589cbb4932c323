# Bundle sidecars: `bottle-bundle <daemon>[,<daemon>...]` (pipelock, egress,
# git-gate, supervise, upstream). python3 + git (git daemon) come from the
# debootstrap base; the pinned Python deps are wheels fetched on the host
# (build containers cannot verify TLS to PyPI behind an intercepting proxy)
# and installed offline into a venv, which also sidesteps Debian's
# externally-managed pip. The venv is built in a throwaway stage so the
# wheels never become a layer of the image.
ARG BASE
FROM ${BASE} AS venv
COPY requirements.txt /tmp/bundle/requirements.txt
COPY wheels/ /tmp/bundle/wheels/
RUN python3 -m venv /opt/bundle \
 && /opt/bundle/bin/pip install --quiet --no-index --disable-pip-version-check --no-cache-dir \
        --find-links /tmp/bundle/wheels -r /tmp/bundle/requirements.txt

FROM ${BASE}
COPY --from=venv /opt/bundle /opt/bundle
# Source last: a code change rebuilds only the layers below.
COPY src/ /opt/bottle/
RUN echo /opt/bottle > "$(/opt/bundle/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/bottle-src.pth" \
 && /opt/bundle/bin/python3 -m compileall -q /opt/bottle \
 && printf '#!/bin/sh\nexec /opt/bundle/bin/python3 -m bottle_bundle "$@"\n' > /usr/local/bin/bottle-bundle \
 && chmod 0755 /usr/local/bin/bottle-bundle \
 && /opt/bundle/bin/python3 -c 'import bottle_bundle'
ENV PATH=/opt/bundle/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
