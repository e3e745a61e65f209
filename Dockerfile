# etpro-telemetry-sidecar: the agent that runs beside a containerized Suricata.
#
#   docker build --network host -t etpro-telemetry-sidecar .
#
# Two stages on node:20-bookworm-slim: the first compiles TypeScript with the dev dependencies and
# then prunes them; the second carries only the compiled code and the production dependencies,
# runs as a non-root user and works with a read-only root filesystem (the state dir and /tmp are
# volumes).

FROM node:20-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.json \
 && chmod 0755 dist/src/cli.js \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/.cache node_modules/.package-lock.json

FROM node:20-bookworm-slim
ARG UID=10001
ARG GID=10001
ENV NODE_ENV=production \
    TMPDIR=/tmp \
    ETPRO_STATE_DIR=/var/lib/etpro-sidecar
# The npm that ships with the base image is not needed at run time. /var/lib/etpro-collector holds
# the data of the reference collector (`etpro-sidecar collector`, used by the compose demo).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /root/.npm /tmp/* \
 && groupadd --gid "$GID" etpro \
 && useradd --uid "$UID" --gid "$GID" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin etpro \
 && mkdir -p /var/lib/etpro-sidecar /var/lib/etpro-collector \
 && chown "$UID:$GID" /var/lib/etpro-sidecar /var/lib/etpro-collector \
 && chmod 0750 /var/lib/etpro-sidecar /var/lib/etpro-collector \
 && printf '#!/bin/sh\nexec /opt/etpro-sidecar/dist/src/cli.js "$@"\n' > /usr/local/bin/etpro-sidecar \
 && chmod 0755 /usr/local/bin/etpro-sidecar
WORKDIR /opt/etpro-sidecar
COPY --from=build /build/package.json ./package.json
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist/src ./dist/src
USER ${UID}:${GID}
VOLUME ["/var/lib/etpro-sidecar"]
# /healthz of the agent's status server; a bind address of 0.0.0.0 or :: is reached over loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const e=process.env,a=(e.ETPRO_STATUS_ADDR||'127.0.0.1').replace(/^(0\\.0\\.0\\.0|::)$/,'127.0.0.1'),h=a.includes(':')?'['+a+']':a;fetch('http://'+h+':'+(e.ETPRO_STATUS_PORT||'9300')+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM is handled by the agent: it stops reading, drains in-flight events, writes the checkpoint
# and exits 0 within ETPRO_SHUTDOWN_GRACE_MS (keep the container's stop timeout above it).
STOPSIGNAL SIGTERM
ENTRYPOINT ["etpro-sidecar"]
CMD ["run"]
