# The image the Helm chart runs (deploy/helm/tenantplane, `image.repository`):
# tenantctl with every service, the PostgreSQL driver and the Kubernetes client.
#
#   docker build -t ghcr.io/tenantplane/tenantplane:0.1.0 .
#
# Two stages: the package is installed into a virtual environment in the first,
# and only that environment is copied into the second, which runs as a user
# without privileges.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
# The package and the two directories its `contracts` and `services` links point at.
COPY tenantplane ./tenantplane
COPY contracts ./contracts
COPY services ./services
RUN python -m venv /opt/tenantplane \
    && /opt/tenantplane/bin/pip install --no-cache-dir ".[postgres,kubernetes]"

FROM python:3.11.14-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tenantplane
COPY --from=build /opt/tenantplane /opt/tenantplane
ENV PATH=/opt/tenantplane/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001
# Operations endpoint (health, readiness, metrics) of `tenantctl serve`.
EXPOSE 8470
ENTRYPOINT ["tenantctl"]
CMD ["--help"]
