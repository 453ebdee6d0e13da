# syntax=docker/dockerfile:1
# The Streamline gateway (GraphQL API, queue, persistence). Build from the repository root:
#   docker build -f infra/gateway.Dockerfile -t streamline-gateway:dev .
# The image runs the build (tsc, into dist/) with node, no tsx, and serves the web console's static build
# (web/dist, bundled by Vite in the build stage) at /. The gateway imports the engine's light
# entry point (@streamline/engine/spec: model inspection, plan settings, storage), so both workspaces
# go in, but not the engine's tensor libraries: the gateway never loads them
# (services/gateway/test/no-tensor-libraries.test.ts) and runs no local workers here.

# The Node release the project is tested on.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- dependencies: production only, native modules compiled here ----------------------------------
FROM ${NODE_IMAGE} AS deps
# Compilers only in this stage: better-sqlite3 falls back to node-gyp when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first, so that the npm layer is reused while only sources change. Every workspace's
# package.json must be present for `npm ci` to accept the lockfile.
COPY package.json package-lock.json ./
COPY services/engine/package.json services/engine/
COPY services/gateway/package.json services/gateway/
COPY sdk/package.json sdk/
COPY testing/package.json testing/
COPY web/package.json web/
# --omit=dev: no vitest, typescript, @types, kubernetes-models. ONNXRUNTIME_NODE_INSTALL=skip keeps
# onnxruntime-node from downloading its CUDA provider (as package.json's allowScripts does for npm
# releases with install-script policies). Then ONNX Runtime and TensorFlow.js go again
# (--no-save: package.json and the lockfile stay as they are), with the packages only they need:
# about 610 MB of the 700 MB of node_modules.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --no-audit --no-fund -w services/gateway -w services/engine \
 && npm uninstall --no-save --omit=dev --no-audit --no-fund -w services/engine \
      onnxruntime-node onnx-proto @tensorflow/tfjs @tensorflow/tfjs-core @tensorflow/tfjs-converter \
      @tensorflow/tfjs-backend-cpu @tensorflow/tfjs-backend-wasm \
 && npm cache clean --force

# ---- build: the TypeScript compiled with tsc (npm run build), into each workspace's dist/ ------------
# The whole lockfile's tree with its development dependencies (typescript, @types), without install
# scripts: tsc needs no native binary. Only the dist/ folders leave this stage.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY services/engine/package.json services/engine/
COPY services/gateway/package.json services/gateway/
COPY sdk/package.json sdk/
COPY testing/package.json testing/
COPY web/package.json web/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY services/engine services/engine
COPY services/gateway services/gateway
# The console: React and uPlot bundled by Vite with the SDK's browser entry (its TypeScript sources).
COPY sdk/src sdk/src
COPY web web
RUN npm run build -w services/engine -w services/gateway -w web

# ---- runtime -----------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 passes SIGTERM on to Node and reaps children; a fixed non-root UID/GID (10001) that
# the Kubernetes manifests also name (runAsUser), so runAsNonRoot can be verified.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamline \
 && useradd --system --uid 10001 --gid streamline --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin streamline \
 && mkdir -p /var/lib/streamline \
 && chown streamline:streamline /var/lib/streamline
WORKDIR /app
# Application files stay owned by root: the process can read them, not change them. Production
# node_modules and the manifests (the engine's exports map) from deps, the compiled code from build.
COPY --from=deps /app /app
COPY --from=build /app/services/engine/dist services/engine/dist
COPY --from=build /app/services/gateway/dist services/gateway/dist
COPY --from=build /app/web/dist web/dist
COPY infra/healthcheck.mjs infra/healthcheck.mjs
ENV NODE_ENV=production \
    PORT=4000 \
    STREAMLINE_DATA_DIR=/var/lib/streamline \
    STREAMLINE_WORKERS=0
USER 10001:10001
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/infra/healthcheck.mjs", "http"]
# --conditions=streamline-dist: '@streamline/engine/spec' resolves to the engine's dist/ (its default
# export is the TypeScript source, for development and tests). reflect-metadata loads first in the entry.
WORKDIR /app/services/gateway
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--conditions=streamline-dist", "dist/streamline-gateway.js"]
