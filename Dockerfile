# One image for every role (gateway, batch API, batch worker); the command picks the role.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# The CLI workspace's manifest first: npm ci installs its dependencies and links its bin.
COPY packages/cli/package.json packages/cli/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# A fixed malloc mmap threshold: large blocks freed after a burst go back to the kernel
# (scripts/launcher/allocator-env.ts). jemalloc is installed for those who trade ~15 % throughput
# for the flattest memory: run with LD_PRELOAD=/usr/local/lib/libjemalloc.so.2.
ENV NODE_ENV=production HOST=0.0.0.0 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072
RUN apt-get update && apt-get install -y --no-install-recommends libjemalloc2 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/models ./models
# User batch tasks and reducers (BATCH_TASKS_DIR=/app/tasks), compiled by the batch app at start.
COPY --from=build /app/tasks ./tasks
USER node
CMD ["node", "dist/apps/gateway/src/main.js"]
