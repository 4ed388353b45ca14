# The event forwarder as an image, for those who prefer one to the zero-build default (the
# official Python image running the code from ConfigMaps, deploy/base). Standard library only,
# so nothing is installed on top of the base. Build from in-cluster/ (the forwarder and the
# shared package):
#   docker build -f event-forwarder.Dockerfile -t ghcr.io/<org>/doks-floating-ip-event-forwarder:0.1.0 .
# The base is the same digest-pinned image the manifests run (python:3.11-slim); `make images`
# passes BASE to build on a local copy where the registry is out of reach.
ARG BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${BASE}

# No .pyc writes at run time (read-only root filesystem), logs straight out.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY floating_ip_common/ /app/floating_ip_common/
COPY floating_ip_forwarder/ /app/floating_ip_forwarder/
# Compile once at build time, since nothing may be written at run time.
RUN python -m compileall -q /app

# A numeric non-root user, so `runAsNonRoot` can verify it without a passwd entry.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["python", "-m", "floating_ip_forwarder.app"]
