# syntax=docker/dockerfile:1
#
# One image for both processes:
#   API server:       node dist/src/server.js   (default command)
#   Temporal worker:  node dist/src/worker.js
# Configuration comes only from the environment (see src/shared/config.ts).

ARG NODE_IMAGE=node:20.19-bookworm-slim

# ---- build: full dependency tree, compile TypeScript to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
RUN npm run build

# ---- prod-deps: production dependencies only ----
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root, read-only to the process: the app never writes into its own tree
# (npm run build prebuilt the workflow bundle into dist/, so the worker runs no webpack).
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The "node" user (uid 1000) ships with the official image.
USER node
EXPOSE 3000
CMD ["node", "dist/src/server.js"]
