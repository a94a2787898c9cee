# certroute controller image.
#
# Three stages: Debian's Node 24 compiles src/ to JavaScript with every dependency (the compiler
# and the type definitions are dev dependencies), Debian's Node 24 installs the production
# dependencies alone from the lock file, and distroless Node 24 runs the compiled dist/ with them.
# Compiled, the process never loads Node's TypeScript type stripper: it starts about 27 MB lighter
# than the same modules run from source. The final image has no shell, no package manager and no
# TypeScript, runs as the distroless `nonroot` user (65532, the uid the Helm chart pins), and
# starts the same command the e2e tests run: `certroute controller`.

# The base images, by tag. A release pins both by digest, without editing this file:
#   --build-arg BUILD_IMAGE=node:24-bookworm-slim@sha256:<digest>
#   --build-arg RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot@sha256:<digest>
# with each digest read from its registry at release time (README, "Container image").
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the compiler needs no install script, and no dependency gets to run one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script, and none gets to run one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="certroute" \
  org.opencontainers.image.description="TLS certificates for every Traefik route from an ACME CA, speaking the cert-manager API" \
  org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json: "type": "module" makes Node load dist/'s .js files as ES modules.
COPY package.json ./
COPY crds ./crds
USER 65532:65532
# responder, metrics, health (/livez, /readyz)
EXPOSE 8089 9402 9403
ENTRYPOINT ["/nodejs/bin/node", "dist/cli/main.js"]
CMD ["controller"]
