# Stratum web / worker / beat image: one image, the command decides the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=stratum.settings \
    # The source tree in /app comes first on sys.path, so BASE_DIR (templates/, static/) is /app.
    PYTHONPATH=/app \
    STRATUM_VAR_DIR=/app/var \
    STRATUM_ARTIFACT_ROOT=/data/artifacts

# WeasyPrint (model card PDFs) needs pango, harfbuzz and a font at run time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 1000 stratum \
 && useradd --system --uid 1000 --gid stratum --home-dir /app --shell /usr/sbin/nologin stratum

WORKDIR /app
COPY . /app
RUN pip install . \
 && rm -rf build ./*.egg-info

# Static files are collected at build time (into /app/var/staticfiles) with a throwaway key: settings need one,
# and nothing built here is signed with it. The running containers get the real SECRET_KEY from the environment.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput \
 && rm -f /app/var/secret_key /app/var/*.sqlite3 \
 && mkdir -p /data/artifacts /data/beat \
 && chown -R stratum:stratum /app/var /data

USER stratum
EXPOSE 8000
# Named volumes mounted on /data/* start with the ownership set above.
VOLUME ["/data/artifacts"]

ENV STRATUM_BIND=0.0.0.0:8000
CMD ["uwsgi", "--ini", "deploy/uwsgi.ini"]
