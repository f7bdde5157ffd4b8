# SafeGrid's API, workers and cron (deploy/compose/compose.yml): one image, three commands.
FROM python:3.11-slim
WORKDIR /opt/safegrid
COPY pyproject.toml README.md babel.cfg wsgi.py ./
COPY gateway gateway
COPY grid grid
COPY sms sms
COPY geo geo
COPY deploy deploy
RUN pip install --no-cache-dir . \
 && useradd --system --home /opt/safegrid safegrid \
 && mkdir -p /var/lib/safegrid/anchors && chown safegrid /var/lib/safegrid/anchors
USER safegrid
