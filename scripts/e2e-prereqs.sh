#!/usr/bin/env bash
# Prepares the machine for the end-to-end tests (test/e2e): a Docker engine, docker compose,
# the base images, and helm. Idempotent; needs root. Run from the repository root; the shared
# tools live beside the repository in ../shared/tools.
#
# Exit 0 when everything is ready. Exit 2 when the Docker engine cannot start (its own error is
# printed): the caller reports the Docker tier as not run. Any other failure exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
tools=../shared/tools

fail() { echo "e2e-prereqs: $*" >&2; exit 1; }

echo "== helm"
bash "$tools/install-helm.sh" || fail "helm could not be installed"

echo "== docker engine"
if ! bash "$tools/start-dockerd.sh"; then
  echo "e2e-prereqs: the Docker engine could not start (see its error above); the Docker tier is not run" >&2
  exit 2
fi

echo "== docker compose"
if docker compose version >/dev/null 2>&1; then
  docker compose version
elif command -v docker-compose >/dev/null 2>&1; then
  docker-compose version --short
else
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }; } \
    || fail "docker compose is not available and docker-compose could not be installed"
  docker-compose version --short
fi

echo "== base images"
# This machine reaches no image registry: local stand-ins are built for images that are missing.
bash "$tools/local-images.sh" || fail "base images could not be built"

# The node stand-in is meant to trust this machine's CA bundle (it sets NODE_EXTRA_CA_CERTS to it),
# but the file is missing from the image when the minimal root has no /etc/ssl/certs: without it,
# npm inside `docker build` cannot reach the registry through a TLS-inspecting proxy.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
standin=$(docker image inspect -f '{{ index .Config.Labels "standin" }}' node:20-bookworm-slim 2>/dev/null || true)
if [ "$standin" = "true" ] && [ -f /etc/ssl/certs/ca-certificates.crt ] \
   && ! docker run --rm --network none --entrypoint /bin/sh node:20-bookworm-slim -c 'test -s /etc/ssl/certs/ca-certificates.crt'; then
  echo "== giving the node:20-bookworm-slim stand-in this machine's CA bundle"
  mkdir -p "$work/node" && cp /etc/ssl/certs/ca-certificates.crt "$work/node/"
  printf 'FROM node:20-bookworm-slim\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' > "$work/node/Dockerfile"
  docker build -q --network host -t node:20-bookworm-slim "$work/node" >/dev/null || fail "could not extend the node stand-in"
fi

# The stand-in for jasonish/suricata:7.0 runs suricata directly. The real image starts through an
# entrypoint that honours PUID/PGID, chowns its volumes and drops to the `suricata` user when it has
# SYS_NICE and NET_ADMIN. The compose file is written for that behaviour, so give the stand-in the
# same entrypoint (the real image is left alone).
standin=$(docker image inspect -f '{{ index .Config.Labels "standin" }}' jasonish/suricata:7.0 2>/dev/null || true)
entry=$(docker image inspect -f '{{ index .Config.Labels "standin.entrypoint" }}' jasonish/suricata:7.0 2>/dev/null || true)
if [ "$standin" = "true" ] && [ "$entry" != "jasonish-7.0" ]; then
  echo "== giving the jasonish/suricata:7.0 stand-in the image's documented entrypoint"
  mkdir -p "$work/suricata"
  cp scripts/standin-suricata-entrypoint.sh "$work/suricata/docker-entrypoint.sh"
  cat > "$work/suricata/Dockerfile" <<'DOCKERFILE'
FROM jasonish/suricata:7.0
RUN useradd --system --create-home suricata \
 && mkdir -p /var/log/suricata /var/lib/suricata/rules /var/run/suricata \
 && touch /var/lib/suricata/rules/suricata.rules \
 && cp -a /etc/suricata /etc/suricata.dist \
 && chown -R suricata:suricata /etc/suricata /var/log/suricata /var/lib/suricata /var/run/suricata
COPY docker-entrypoint.sh /docker-entrypoint.sh
RUN chmod 0755 /docker-entrypoint.sh
VOLUME ["/var/log/suricata", "/var/lib/suricata", "/var/run/suricata", "/etc/suricata"]
LABEL standin.entrypoint=jasonish-7.0
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD []
DOCKERFILE
  docker build -q --network host -t jasonish/suricata:7.0 "$work/suricata" >/dev/null || fail "could not extend the suricata stand-in"
fi
echo "e2e-prereqs: ready"
