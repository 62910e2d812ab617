# The l10n Pulse worker. One image for every role: the worker (default
# command), `migrate`, a web head (the pages, their JSON and the admin) and the operator commands:
#   docker run IMAGE                                  # consume-pulse
#   docker run -p 8000:8000 -e SECRET_KEY=… -e ALLOWED_HOSTS=l10n.example.org IMAGE web   # gunicorn on :8000
#   docker run IMAGE python manage.py migrate
#   docker run IMAGE python manage.py reprocess-repo l10n-central/de
# The Debian release is named, not implied: `3.11-slim` moved to trixie, where the pinned git below
# does not exist.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REPOSITORY_BASE=/srv/repos \
    VAR_DIR=/srv/var \
    HEARTBEAT_FILE=/tmp/l10n-worker-heartbeat

WORKDIR /app

# git fetches and reads the GitHub repositories (a subprocess per fetch, with a timeout; one
# streaming `git log` per import). Pinned like the Python dependencies: bookworm's package.
# (setpriv, which makes git die with the worker, is util-linux's: essential, always there.)
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first (pinned in pyproject.toml), so code changes reuse this layer.
# Mercurial and psycopg install from binary wheels: no compiler in the image.
COPY pyproject.toml ./
RUN mkdir -p settings plumbing life l10n worker web simulated \
    && touch settings/__init__.py plumbing/__init__.py life/__init__.py l10n/__init__.py worker/__init__.py \
             web/__init__.py simulated/__init__.py \
    && pip install . \
    && pip uninstall --yes l10n-pulse-worker \
    && rm -rf settings plumbing life l10n worker web simulated build *.egg-info

COPY manage.py ./
COPY settings ./settings
COPY plumbing ./plumbing
COPY life ./life
COPY l10n ./l10n
COPY worker ./worker
COPY web ./web
COPY docker/entrypoint docker/healthcheck /usr/local/bin/

# The web head's static files, collected (and compressed) at build time; whitenoise serves them.
# (collectstatic reads no database and needs no secret.)
RUN python manage.py collectstatic --noinput --verbosity 0

# Clones live on shared storage (the web heads read them too); run as a plain user.
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin l10n \
    && mkdir -p /srv/repos /srv/var \
    && chown -R l10n /srv
VOLUME ["/srv/repos"]
USER l10n

# Metrics for Prometheus (set METRICS_PORT=0 to turn off); a web head serves on 8000.
ENV METRICS_PORT=9100
EXPOSE 9100 8000

# A worker is unhealthy when its consumer loop has not beaten within HEALTHCHECK_MAX_AGE (above
# VCS_TIMEOUT, python -m worker.health); a web head when /healthz does not answer 200.
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 CMD ["healthcheck"]

ENTRYPOINT ["entrypoint"]
CMD ["python", "manage.py", "consume-pulse"]
