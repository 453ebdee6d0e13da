# syntax=docker/dockerfile:1
# Streamline engine worker for NVIDIA GPUs. Both runtimes use the GPU:
#   - ONNX Runtime (forward passes): onnxruntime-node with its CUDA execution provider, which needs
#     CUDA 12 and cuDNN 9; the base image provides them.
#   - TensorFlow.js (replacement training): @tensorflow/tfjs-node-gpu 4.22.0, whose libtensorflow 2.9
#     links against CUDA 11 and cuDNN 8. Those libraries have other sonames (libcudart.so.11.0,
#     libcublas.so.11, libcudnn.so.8, ...) than the CUDA 12 ones, so both sets sit side by side.
# Build from the repository root (needs network access: both installs download binaries):
#   docker build -f infra/engine-gpu.Dockerfile -t streamline-engine-gpu:dev .
# Nodes need an NVIDIA driver new enough for CUDA 12.4 (>= 550; the base image refuses older ones).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

# Only a source of the Node binary and npm (the official build runs on any glibc >= 2.28).
FROM ${NODE_IMAGE} AS node

# ---- base: CUDA 12 + cuDNN 9 runtime, the CUDA 11 / cuDNN 8 libraries for libtensorflow, Node ------
FROM ${CUDA_IMAGE} AS base
# libtensorflow 2.9 was built with CUDA 11.2 and cuDNN 8.1. NVIDIA's Ubuntu 22.04 repository (set up in
# the base image) starts at CUDA 11.7, so this takes 11.8 and cuDNN 8.9: CUDA's minor-version
# compatibility and cuDNN 8's backward compatibility let a CUDA 11.2 / cuDNN 8.1 build use them, and
# their sonames are the ones TensorFlow opens. TensorFlow registers the GPU only when it can open all
# of them (cudart, cublas/cublasLt, cufft, curand, cusolver, cusparse, cudnn).
ARG CUDA11_VERSION=11-8
ARG CUDNN8_VERSION=8.9.7.29-1+cuda11.8
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini ca-certificates \
      cuda-cudart-${CUDA11_VERSION} libcublas-${CUDA11_VERSION} libcufft-${CUDA11_VERSION} \
      libcurand-${CUDA11_VERSION} libcusolver-${CUDA11_VERSION} libcusparse-${CUDA11_VERSION} \
      libcudnn8=${CUDNN8_VERSION} \
 && apt-mark hold libcudnn8 \
 && rm -rf /var/lib/apt/lists/*
# CUDA 11 beside CUDA 12 (/usr/local/cuda -> 12.4); cuDNN 8 and 9 live in /usr/lib/x86_64-linux-gnu.
# The last two are where the NVIDIA container toolkit mounts the driver (the base image's own value).
ENV LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64:/usr/local/cuda/lib64:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
COPY --from=node /usr/local/bin/node /usr/local/bin/node

# ---- dependencies: production only, with the GPU binaries -------------------------------------------
FROM base AS deps
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
COPY services/engine/package.json services/engine/
COPY services/gateway/package.json services/gateway/
COPY sdk/package.json sdk/
COPY testing/package.json testing/
COPY web/package.json web/
# Here the install must fetch the CUDA 12 provider (libonnxruntime_providers_cuda.so). package.json's
# allowScripts denies onnxruntime-node's install script (no downloads on machines without internet) on
# npm releases that honour it. So npm ci runs it with ONNXRUNTIME_NODE_INSTALL=cuda12 where npm has no
# such policy, and the script runs again by itself after npm ci; without the variable it downloads only
# the files still missing, so whichever npm this is, the provider is fetched once.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --omit=dev --no-audit --no-fund -w services/engine \
 && (cd node_modules/onnxruntime-node && env -u ONNXRUNTIME_NODE_INSTALL node script/install.js) \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
# tfjs-node-gpu is not a dependency of the engine (its install downloads libtensorflow, impossible
# where the tests run); the engine imports it when present. Installed into the same node_modules as
# the engine's @tensorflow/tfjs-core, so it registers its backend on the instance the engine uses.
RUN npm install --omit=dev --no-save --no-audit --no-fund -w services/engine @tensorflow/tfjs-node-gpu@4.22.0 \
 && test -d node_modules/@tensorflow/tfjs-node-gpu/deps/lib \
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
FROM base AS runtime
RUN groupadd --system --gid 10001 streamline \
 && useradd --system --uid 10001 --gid streamline --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin streamline \
 && mkdir -p /var/lib/streamline \
 && chown streamline:streamline /var/lib/streamline
WORKDIR /app
# Production node_modules and the manifests from deps, the compiled engine from build.
COPY --from=deps /app /app
COPY --from=build /app/services/engine/dist services/engine/dist
COPY infra/healthcheck.mjs infra/healthcheck.mjs
# STREAMLINE_ONNX_PROVIDER / STREAMLINE_BACKEND: select the GPU paths explicitly instead of by
# detection (a missing package is then an error, not a silent CPU fallback; TensorFlow itself still
# falls back to its CPU kernels when it cannot open a CUDA library, and logs which one).
# CUDA_CACHE_PATH: the PTX JIT cache (e.g. TensorFlow 2.9's kernels on GPUs newer than it knows) on the
# writable /tmp, since the root filesystem is read-only under Kubernetes.
ENV NODE_ENV=production \
    STREAMLINE_DATA_DIR=/var/lib/streamline \
    STREAMLINE_ONNX_PROVIDER=cuda \
    STREAMLINE_BACKEND=tensorflow \
    CUDA_CACHE_PATH=/tmp/cuda-cache \
    TF_CPP_MIN_LOG_LEVEL=1
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/infra/healthcheck.mjs", "worker"]
# The build of the worker, with node (no tsx). Its name ends like the bin's, which is what
# infra/healthcheck.mjs looks for.
WORKDIR /app/services/engine
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--conditions=streamline-dist", "dist/streamline-worker.js"]
