# The prometheus service in CI: Debian's Prometheus (gatehouse-ci/debian,
# see deployments/compose/ci.sh) where prom/prometheus would be, with the
# official image's paths and user: /etc/prometheus/prometheus.yml (the
# mounted deployments/prometheus/prometheus.yml), data in /prometheus,
# port 9090, user nobody. promtool is there too.
FROM gatehouse-ci/debian:latest
RUN mkdir -p /prometheus && chown nobody:nogroup /prometheus
VOLUME /prometheus
WORKDIR /prometheus
USER nobody
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
