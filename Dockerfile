# Ferrodyn as a container: a drop-in replacement for amazon/dynamodb-local.
#
#   docker build -t ferrodyn .
#   docker run --rm -p 8000:8000 ferrodyn                      # in memory, like -inMemory
#   docker run --rm -p 8000:8000 -v ferrodyn:/home/dynamodblocal/data ferrodyn -sharedDb -dbPath ./data
#
# See docs/operations.md, "Docker".

# Build stage: the release binary, from the locked dependency set.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferrodyn \
    && strip target/release/ferrodyn

# Final stage: the binary alone on a slim Debian, run by an unprivileged user. The working
# directory is the one amazon/dynamodb-local uses, so its `-dbPath ./data` volumes fit unchanged.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/dynamodblocal ferrodyn \
    && mkdir /home/dynamodblocal/data \
    && chown ferrodyn:ferrodyn /home/dynamodblocal/data
COPY --from=build /src/target/release/ferrodyn /usr/local/bin/ferrodyn
USER ferrodyn
WORKDIR /home/dynamodblocal
EXPOSE 8000
# `GET /` answers "healthy: HOST" with 200 once the server accepts requests (as DynamoDB's
# endpoints do). Uses bash's /dev/tcp: the image carries no HTTP client. Assumes port 8000.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["ferrodyn"]
# DynamoDB Local's test-double mode: in memory, port 8000, every interface, any credentials.
CMD ["-inMemory", "-port", "8000"]
