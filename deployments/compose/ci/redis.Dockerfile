# The redis service in CI: Debian's redis-server (gatehouse-ci/debian, a
# debootstrap root file system imported by deployments/compose/ci.sh) shaped
# like the official redis image: runs as redis in /data, and redis-server
# runs with protected mode off so other containers may connect.
FROM gatehouse-ci/debian:latest
RUN mkdir -p /data && chown redis:redis /data \
 && printf '%s\n' '#!/bin/sh' \
      'if [ "$1" = redis-server ]; then set -- "$@" --protected-mode no; fi' \
      'exec "$@"' >/usr/local/bin/docker-entrypoint.sh \
 && chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
