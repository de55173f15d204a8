# syntax=docker/dockerfile:1
# fleetpulse: build with all dependencies, run with production ones only, as a non-root user.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
# better-sqlite3 compiles its native addon when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` runs `prepare` (tsc -> dist/); then the dev dependencies go.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# Dump and restore clients for `fleetpulse backup` / `restore` (PostgreSQL 15 and MariaDB, Debian bookworm),
# curl for the deploy script's readiness probes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client mariadb-client curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:/data/fleetpulse.sqlite
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
RUN mkdir -p /data /app/backups && chown node:node /data /app/backups
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM drains: /readyz 503, in-flight requests finish, the monitor lease is released, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/fleetpulse.js"]
CMD ["serve"]
