# The anchor-IP annotator as an image: needed for the pod mode (an init container in your
# ingress's namespace); the node mode runs the code from ConfigMaps on the official Python
# image (deploy/base). Standard library only. Build from in-cluster/ (the annotator and the
# shared package):
#   docker build -f annotator.Dockerfile -t ghcr.io/<org>/doks-floating-ip-annotator:0.1.0 .
# The base is the same digest-pinned image the manifests run (python:3.11-slim); `make images`
# passes BASE to build on a local copy where the registry is out of reach.
ARG BASE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${BASE}

ENV PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY floating_ip_common/ /app/floating_ip_common/
COPY floating_ip_annotator/ /app/floating_ip_annotator/
# Compile once at build time, since nothing may be written at run time.
RUN python -m compileall -q /app

# A numeric non-root user, so `runAsNonRoot` can verify it without a passwd entry.
USER 65532:65532
ENTRYPOINT ["python", "-m", "floating_ip_annotator"]
