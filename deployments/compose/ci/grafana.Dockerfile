# The grafana service in CI: pkg/grafanatest's stand-in (./grafana, built
# static by deployments/compose/ci.sh) where grafana/grafana would be, with
# the official image's paths: /etc/grafana/grafana.ini, port 3000, user 472.
FROM gatehouse-ci/static:latest
COPY grafana /grafana
USER 472
EXPOSE 3000
ENTRYPOINT ["/grafana"]
CMD ["--config", "/etc/grafana/grafana.ini", "--address", "0.0.0.0:3000"]
