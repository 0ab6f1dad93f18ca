# swarmtune node image: docker compose up (see docker-compose.yml) runs a bootstrap peer + 3 peers.
FROM node:20-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY config ./config
COPY src ./src
COPY scripts ./scripts
RUN npx tsc -p . && npm prune --omit=dev
ENV SWARMTUNE_DATA_DIR=/data
VOLUME /data
# 4101: libp2p (TCP), 4100: control API
EXPOSE 4100 4101
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
