# resource-broker container image: compiled TypeScript, production dependencies only, non-root.
# Not built on the development machines (no container engine there); see README "Deployment".
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# Debian, not Alpine: jemalloc and glibc's malloc settings are what the bench measured.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
# jemalloc preloaded, glibc's setting for anything that runs without it: src/cli/node-flags.ts
# says why (a unit test keeps the two the same). The link, to where the package put the library,
# gives one path on every architecture, and the build fails if it leads nowhere.
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2 \
    && test -e /usr/local/lib/libjemalloc.so.2
ENV MALLOC_MMAP_THRESHOLD_=131072 LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 MALLOC_CONF=background_thread:true,max_background_threads:1,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY apiexports ./apiexports
USER node
# libuv's thread pool: src/cli/node-flags.ts (BROKER_THREAD_ENV) says why; a unit test keeps the two the same.
ENV UV_THREADPOOL_SIZE=2
EXPOSE 8080 8081
# V8 flags: src/cli/node-flags.ts says why (a unit test keeps the two the same).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "--max-opt=2", "--v8-pool-size=1", "bin/resource-broker.js"]
CMD ["run", "--metrics-bind-address=0.0.0.0:8080", "--health-probe-bind-address=0.0.0.0:8081"]
