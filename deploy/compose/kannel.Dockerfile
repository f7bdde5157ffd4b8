# Kannel 1.4.5 from Debian, as deploy/bootstrap.sh installs it (bearerbox, smsbox),
# with envsubst for deploy/compose/kannel.sh.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kannel gettext-base \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/spool/kannel/store /var/spool/kannel/dlr \
 && chown -R kannel:kannel /var/spool/kannel
USER kannel
