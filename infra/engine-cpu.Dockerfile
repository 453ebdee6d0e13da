# syntax=docker/dockerfile:1
# Streamline engine worker, CPU only: ONNX Runtime's CPU provider for forward passes, TensorFlow.js on
# its WebAssembly backend for training. For development clusters and small models. Build from the
# repository root:
#   docker build -f infra/engine-cpu.Dockerfile -t streamline-engine-cpu:dev .

# The Node release the project is tested on.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- dependencies: production only ------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY services/engine/package.json services/engine/
COPY services/gateway/package.json services/gateway/
COPY sdk/package.json sdk/
COPY testing/package.json testing/
COPY web/package.json web/
# Only the engine's dependencies. onnxruntime-node's CPU binaries are inside its npm package;
# ONNXRUNTIME_NODE_INSTALL=skip stops its install script's CUDA provider download (npm releases with
# install-script policies skip it anyway: package.json's allowScripts). The wasm files of
# @tensorflow/tfjs-backend-wasm are inside its package too.
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --omit=dev --no-audit --no-fund -w services/engine \
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
RUN npm run build -w services/engine

# ---- runtime -----------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 streamline \
 && useradd --system --uid 10001 --gid streamline --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin streamline \
 && mkdir -p /var/lib/streamline \
 && chown streamline:streamline /var/lib/streamline
WORKDIR /app
# Production node_modules and the manifests from deps, the compiled engine from build.
COPY --from=deps /app /app
COPY --from=build /app/services/engine/dist services/engine/dist
COPY infra/healthcheck.mjs infra/healthcheck.mjs
ENV NODE_ENV=production \
    STREAMLINE_DATA_DIR=/var/lib/streamline \
    STREAMLINE_ONNX_PROVIDER=cpu \
    STREAMLINE_BACKEND=wasm
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/infra/healthcheck.mjs", "worker"]
# The build of the worker, with node (no tsx). Its name ends like the bin's, which is what
# infra/healthcheck.mjs looks for.
WORKDIR /app/services/engine
ENTRYPOINT ["/usr/bin/tini", "--"]
# On SIGTERM the worker checkpoints, releases its lease and exits (Kubernetes waits up to
# terminationGracePeriodSeconds for that).
CMD ["node", "--conditions=streamline-dist", "dist/streamline-worker.js"]
