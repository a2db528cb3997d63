# Mission Clawtrol: a multi-stage build. The first stage builds a virtualenv from constraints.txt (what CI
# tested); the runtime stage is a slim Python with that venv, the app's resources, and no compilers or tests.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY constraints.txt pyproject.toml README.md ./
COPY clawtrol ./clawtrol
RUN /opt/venv/bin/pip install --constraint constraints.txt .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLAWTROL_HOME=/app \
    CLAWTROL_DATA_DIR=/data \
    CLAWTROL_ENV=production \
    HOST=0.0.0.0 \
    PORT=3001
RUN groupadd --system --gid 10001 clawtrol \
 && useradd --system --uid 10001 --gid clawtrol --home-dir /app --no-create-home clawtrol \
 && mkdir -p /app /data \
 && chown clawtrol:clawtrol /data
COPY --from=build /opt/venv /opt/venv
COPY templates /app/templates
COPY static /app/static
COPY sql /app/sql
WORKDIR /app
USER clawtrol
VOLUME ["/data"]
EXPOSE 3001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "clawtrol.healthcheck"]
# Migrations run at start (exactly once, even with several replicas); workers come from CLAWTROL_WORKERS.
CMD ["clawtrol", "serve"]
