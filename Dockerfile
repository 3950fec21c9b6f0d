# customs-gateway: multi-stage build, runs as an unprivileged user.
#   docker build -t customs-gateway .
#   docker run --rm -p 8443:8443 -p 8444:8444 -v /srv/federation:/etc/customs-gateway:ro \
#       -v cgw-data:/var/lib/customs-gateway customs-gateway
# The config (/etc/customs-gateway/gateway.toml) must set data_dir = "/var/lib/customs-gateway" and
# host = "0.0.0.0"; keys are mounted read-only and must not be readable by group/other. Without policies_dir the
# gateway runs the policies shipped in the package (the wheel carries policies/ as gateway/policies, setup.py);
# /usr/share/customs-gateway/policies holds the same files for configs that name it.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY policies ./policies
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 cgw \
 && useradd --system --uid 10001 --gid cgw --home-dir /nonexistent --shell /usr/sbin/nologin cgw \
 && install -d -o cgw -g cgw -m 0700 /var/lib/customs-gateway
COPY --from=build /opt/venv /opt/venv
# The Cedar policies are data, read-only for the service user; the config's policies_dir points here.
COPY --chown=root:root policies /usr/share/customs-gateway/policies
USER cgw:cgw
WORKDIR /var/lib/customs-gateway
EXPOSE 8443 8444
VOLUME ["/var/lib/customs-gateway"]
# /healthz is served over TLS by the gateway itself; no client certificate is needed for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import ssl,urllib.request as u; c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE; u.urlopen('https://127.0.0.1:8443/healthz', context=c, timeout=4)" || exit 1
ENTRYPOINT ["customs-gateway"]
CMD ["serve", "--config", "/etc/customs-gateway/gateway.toml"]
