# homeostat daemon image: slim Python, pinned dependencies, non-root; with the PostgreSQL
# driver, so the same image runs the two-task standby pair (docs/operations.md).
#   docker build -t homeostat .
#   docker run -v $PWD/desired-state:/desired-state:ro -e AWS_REGION=eu-west-1 homeostat
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY homeostat ./homeostat
RUN python -m venv /opt/homeostat \
 && /opt/homeostat/bin/pip install --no-cache-dir --upgrade "pip>=24" \
 && /opt/homeostat/bin/pip install --no-cache-dir -c constraints.txt ".[postgres]"

FROM python:3.11-slim
# git lets homeostat name the revision by its commit when the directory is a checkout.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/homeostat --create-home homeostat \
 && git config --system --add safe.directory '*'
COPY --from=build /opt/homeostat /opt/homeostat
# MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own arena, and a pass reads on up
# to 8 threads per kind; two arenas keep the whole-fleet pass about 6 MB lower (docs/benchmarks.md).
ENV PATH=/opt/homeostat/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOMEOSTAT_DESIRED_STATE=/desired-state \
    HOMEOSTAT_HISTORY=sqlite:////var/lib/homeostat/homeostat.db \
    HOMEOSTAT_LISTEN=0.0.0.0:9464 \
    HOMEOSTAT_LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
USER 10001
WORKDIR /var/lib/homeostat
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["homeostat", "run"]
