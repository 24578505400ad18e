# MariaDB (Debian bookworm's 10.11) standing in for the mysql:8.4 image of KFP's
# third-party/mysql manifest, which cannot be pulled here. Build context: this folder.
#   docker build --network host -f mariadb.Dockerfile -t localhost/symptomdx/mariadb:10.11 .
# Runs as mysql, uid/gid 999 (the manifest's runAsUser/runAsGroup/fsGroup); data in
# /var/lib/mysql; listens on 0.0.0.0:3306. See mariadb-entrypoint.sh for args and env.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# The mysql user first, so the package adopts uid/gid 999; no service is started during the
# install (policy-rc.d); the package's own initialized datadir is removed: the entrypoint makes
# one on first start with the upstream image's users.
RUN groupadd --system --gid 999 mysql \
 && useradd --system --uid 999 --gid 999 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin mysql \
 && printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server mariadb-client \
 && rm -f /usr/sbin/policy-rc.d \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/lib/mysql \
 && mkdir -p /var/lib/mysql /run/mysqld \
 && chown mysql:mysql /var/lib/mysql /run/mysqld \
 && chmod 0775 /var/lib/mysql /run/mysqld
COPY mariadb.cnf /etc/mysql/mariadb.conf.d/99-kfp.cnf
COPY mariadb-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0644 /etc/mysql/mariadb.conf.d/99-kfp.cnf \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh
USER 999:999
VOLUME /var/lib/mysql
EXPOSE 3306
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
