# The edge service in CI: Debian's nginx with its stream module
# (gatehouse-ci/debian, see deployments/compose/ci.sh) where nginx:alpine
# would be. Like the official image it reads /etc/nginx/nginx.conf (the
# mounted edge.conf) and runs in the foreground; Debian builds the stream
# module as a module, so it is loaded here, as the official image has it
# built in.
FROM gatehouse-ci/debian:latest
EXPOSE 443
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "load_module modules/ngx_stream_module.so; user www-data; error_log stderr; daemon off;"]
