//! HTTP/1.1 front end: connection handling, body limits, health and metrics endpoints, the web
//! console's static files, response headers, request metrics and the slow-request log.
//!
//! Invariants:
//! - Every response carries `x-amzn-RequestId`, `x-amz-crc32` (CRC32 of the exact body bytes
//!   sent) and `Content-Type`; a request is never answered before its body is fully read or
//!   rejected as too large.
//! - Every answered API request (not CORS preflights, health checks or scrapes) is counted once
//!   in the metrics, by operation and outcome, with its latency.
//! - `/metrics` is authorized like an admin operation (`ferrodyn:GetMetrics`) when keys are
//!   enforced; `/health/live` and `/health/ready` never are.
//! - `/console` and `/console/...` (API listener only) answer with ferrodyn-console's built-in
//!   files and security headers, never authenticated and never counted as API requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::wire::{self, EdgeError};
use crate::Shared;
use crate::{auth, authz, ops};
use ferrodyn_core::audit::AuditContext;
use ferrodyn_metrics::OpId;

/// DynamoDB refuses request bodies over 16 MB.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Limit of the request line and of the headers, each.
const MAX_LINE: usize = 16 * 1024;

/// What a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The DynamoDB API (and `/metrics`, `/health/*`).
    Api,
    /// `--metrics-addr`: `/metrics` and `/health/*` only, plain HTTP.
    MetricsOnly,
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    kind: Listener,
) {
    loop {
        tokio::select! {
            res = listener.accept() => {
                let (stream, peer) = match res {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let conn_shutdown = shutdown.clone();
                let tls = match kind {
                    Listener::Api => shared.tls.as_ref().map(|t| t.acceptor()),
                    Listener::MetricsOnly => None,
                };
                match tls {
                    None => {
                        tokio::spawn(serve_connection(stream, peer, false, shared, conn_shutdown, kind, false));
                    }
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            let handshake = tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            );
                            match handshake.await {
                                Ok(Ok(tls)) => {
                                    serve_connection(tls, peer, true, shared, conn_shutdown, kind, false).await
                                }
                                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves HTTP/1.1 on one accepted connection (plain or TLS) until it closes or the server
/// shuts down (in-flight requests finish first). With `half_close`, a client that shuts down
/// its sending side still gets the answers to the requests it sent (`RawFront`); sockets
/// close at once, as hyper does by default.
pub(crate) async fn serve_connection<IO>(
    io: IO,
    peer: SocketAddr,
    secure: bool,
    shared: Arc<Shared>,
    mut conn_shutdown: tokio::sync::watch::Receiver<bool>,
    kind: Listener,
    half_close: bool,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let metrics = shared.metrics.clone();
    let _open = metrics.connection();
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, peer, secure, req, kind).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .half_close(half_close)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = conn_shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// CORS as DynamoDB does it: any Origin is allowed; preflight echoes the requested method and
/// headers; nothing CORS-related is sent to requests without an Origin.
async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    secure: bool,
    req: Request<Incoming>,
    kind: Listener,
) -> Response<Full<Bytes>> {
    let request_id = next_request_id();
    if req.method() == Method::GET || req.method() == Method::HEAD {
        match req.uri().path() {
            "/health/live" => {
                return finish(
                    StatusCode::OK,
                    "application/json",
                    &request_id,
                    br#"{"status":"live"}"#.to_vec(),
                )
            }
            "/health/ready" => return readiness(&shared, &request_id),
            "/metrics" => return scrape(&shared, peer, secure, req, &request_id),
            _ => {}
        }
    }
    if kind == Listener::MetricsOnly {
        return finish(StatusCode::NOT_FOUND, "text/plain", &request_id, Vec::new());
    }
    if ferrodyn_console::owns(req.uri().path()) {
        return console(req.method(), req.uri().path(), &request_id);
    }
    let h = req.headers();
    let origin = h.contains_key(hyper::header::ORIGIN);
    let preflight = req.method() == Method::OPTIONS;
    let want_method = h.get(hyper::header::ACCESS_CONTROL_REQUEST_METHOD).cloned();
    let want_headers = h
        .get(hyper::header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if preflight {
        finish(StatusCode::OK, "text/plain", &request_id, Vec::new())
    } else {
        let start = std::time::Instant::now();
        let mut track = Track {
            op: OpId::default(),
            error: None,
            body: None,
            counted: true,
        };
        // Debug level: an enabled span costs about 8% of a GetItem's instructions (the fmt
        // layer formats its fields), so at the default `info` filter it is off. The lines a
        // request logs at `info` and above name the id themselves (the slow-request and audit
        // lines in their fields; internal errors inside an error-level span, see
        // `domain_error`).
        let span = tracing::debug_span!("request", request_id = %request_id);
        let resp = if span.is_disabled() {
            handle_request(&shared, peer, secure, req, &request_id, &mut track).await
        } else {
            use tracing::Instrument;
            handle_request(&shared, peer, secure, req, &request_id, &mut track)
                .instrument(span.clone())
                .await
        };
        let elapsed = start.elapsed();
        if track.counted {
            shared.metrics.record(
                track.op,
                match &track.error {
                    None => Ok(()),
                    Some(e) => Err(e),
                },
                elapsed.as_secs_f64(),
            );
        }
        if shared.slow_request.is_some_and(|t| elapsed >= t) {
            let table = track
                .body
                .as_deref()
                .and_then(|b| ops::audit_target(b).0)
                .unwrap_or_default();
            let _in = span.enter();
            tracing::warn!(
                operation = shared.metrics.operation_name(track.op),
                table = %table,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                request_id = %request_id,
                outcome = track.error.as_deref().unwrap_or(ferrodyn_metrics::OK),
                "slow request"
            );
        }
        resp
    };
    if origin {
        let rh = resp.headers_mut();
        rh.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        rh.insert(
            hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,Date,x-amz-crc32",
            ),
        );
        if preflight {
            rh.insert(
                hyper::header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("172800"),
            );
            // The preflight's own values are echoed only when they are visible ASCII (what
            // a browser sends); opaque bytes are never reflected into a response.
            if let Some(m) = want_method.filter(|v| v.to_str().is_ok()) {
                rh.insert(hyper::header::ACCESS_CONTROL_ALLOW_METHODS, m);
            }
            if let Some(hs) = want_headers.filter(|v| v.to_str().is_ok()) {
                rh.insert(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS, hs);
            }
        }
    }
    resp
}

/// `/console` and `/console/...`: the web console's static files, never authenticated (they
/// hold no data; every action of the console is an API request, authenticated and authorized
/// like any other). Only GET and HEAD; not counted as API requests.
fn console(method: &Method, path: &str, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = if *method != Method::GET && *method != Method::HEAD {
        let mut r = finish(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            request_id,
            Vec::new(),
        );
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        match ferrodyn_console::lookup(path) {
            Some(asset) => {
                let mut r = finish(
                    StatusCode::OK,
                    asset.content_type,
                    request_id,
                    asset.body.to_vec(),
                );
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    HeaderValue::from_static(asset.cache_control),
                );
                r
            }
            None => finish(StatusCode::NOT_FOUND, "text/plain", request_id, Vec::new()),
        }
    };
    for (name, value) in ferrodyn_console::SECURITY_HEADERS {
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// What the metrics and the slow-request log learn about a request while it is handled.
struct Track {
    op: OpId,
    /// The error type answered, if any.
    error: Option<std::borrow::Cow<'static, str>>,
    /// The request body (after decompression), kept only for the slow-request log.
    body: Option<Bytes>,
    /// False for plain GETs (the `healthy` check): not API requests.
    counted: bool,
}

impl Track {
    fn edge_error(
        &mut self,
        err: &EdgeError,
        content_type: &str,
        request_id: &str,
    ) -> Response<Full<Bytes>> {
        let (_, ty, _) = wire::edge_error_parts(err);
        let short = ty.rsplit('#').next().unwrap_or(&ty).to_owned();
        self.error = Some(short.into());
        edge_error(err, content_type, request_id)
    }
}

/// `/health/ready`: 200 once the server serves (the engine is open, so storage is open and
/// recovery is done: the listener starts only after `Engine::open` returned), 503 once
/// shutdown began or after the storage failed (a failed journal sync: only a restart ends
/// it). A full disk keeps 200, since reads are served and writes resume by themselves once
/// space is freed, with `"status":"degraded"` and the reason.
fn readiness(shared: &Shared, request_id: &str) -> Response<Full<Bytes>> {
    use ferrodyn_storage::WriteFault;
    let fault = shared.engine.write_fault();
    if shared.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        finish(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            request_id,
            br#"{"status":"stopping"}"#.to_vec(),
        )
    } else if let Some(fault) = fault {
        let (status, word) = match &fault {
            WriteFault::Failed(_) => (StatusCode::SERVICE_UNAVAILABLE, "failed"),
            WriteFault::DiskFull(_) => (StatusCode::OK, "degraded"),
        };
        let body = serde_json::json!({"status": word, "reason": fault.message()});
        finish(
            status,
            "application/json",
            request_id,
            body.to_string().into_bytes(),
        )
    } else {
        finish(
            StatusCode::OK,
            "application/json",
            request_id,
            br#"{"status":"ready"}"#.to_vec(),
        )
    }
}

/// The resource `ferrodyn:GetMetrics` is authorized on.
pub fn metrics_arn(engine: &ferrodyn_core::Engine) -> String {
    let c = engine.config();
    format!("arn:aws:dynamodb:{}:{}:metrics", c.region, c.account)
}

/// `GET /metrics`: Prometheus text. With enforced keys the request must be SigV4-signed (an
/// empty body) by a key allowed `ferrodyn:GetMetrics`; errors answer as DynamoDB's do.
fn scrape(
    shared: &Shared,
    peer: SocketAddr,
    secure: bool,
    req: Request<Incoming>,
    request_id: &str,
) -> Response<Full<Bytes>> {
    const JSON: &str = "application/x-amz-json-1.0";
    if let auth::AuthMode::Enforced(_) = &shared.auth {
        let headers: Vec<(&str, &[u8])> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let incoming = auth::Incoming {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: &headers,
            body: &[],
        };
        let identity = match auth::authenticate(&shared.auth, &shared.account, &incoming) {
            Ok(Some(id)) => id,
            Ok(None) => {
                return edge_error(&EdgeError::MissingAuthenticationToken, JSON, request_id)
            }
            Err(e) => return edge_error(&e, JSON, request_id),
        };
        let caller = authz::Caller {
            identity: &identity,
            connection: authz::Connection {
                source: peer.ip(),
                secure,
            },
        };
        let access = ops::access::Access {
            action: "ferrodyn:GetMetrics".to_owned(),
            resource: metrics_arn(&shared.engine),
            ..Default::default()
        };
        if let Err(e) = authz::authorize(&shared.engine, &caller, &[access], true) {
            return domain_error(&e, JSON, request_id);
        }
    }
    let tables = shared.engine.table_statistics();
    let text = shared.metrics.render(&ferrodyn_metrics::Scrape {
        tables,
        resident_bytes: ferrodyn_metrics::resident_bytes(),
        ttl_deleted: Some(shared.engine.ttl_deleted()),
        triggers: shared
            .engine
            .attached::<ferrodyn_triggers::Triggers>()
            .map(|t| t.figures())
            .unwrap_or_default()
            .into_iter()
            .map(|f| ferrodyn_metrics::TriggerScrape {
                trigger_id: f.trigger_id,
                table: f.table_name,
                delivered: f.delivered,
                failed: f.failed,
                retried: f.retried,
                dead_lettered: f.dead_lettered,
                iterator_age_seconds: f.iterator_age_seconds,
            })
            .collect(),
        activity: shared
            .engine
            .table_activity()
            .into_iter()
            .map(|a| ferrodyn_metrics::TableActivityScrape {
                table: a.table,
                read_items: a.read_items,
                read_bytes: a.read_bytes,
                written_items: a.written_items,
                written_bytes: a.written_bytes,
                read_units: a.read_units,
                write_units: a.write_units,
                indexes: a.indexes,
                stream_records: a.stream_records,
                stream_lag_seconds: a.stream_lag_seconds,
            })
            .collect(),
        storage: storage_scrape(shared.engine.storage_stats()),
    });
    finish(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        request_id,
        text.into_bytes(),
    )
}

/// The storage engine's internals as the metrics crate encodes them.
fn storage_scrape(s: ferrodyn_storage::StorageStats) -> ferrodyn_metrics::StorageScrape {
    let histogram = |h: ferrodyn_storage::HistogramStats| ferrodyn_metrics::HistogramScrape {
        bounds: h.bounds,
        counts: h.counts,
        sum: h.sum,
    };
    ferrodyn_metrics::StorageScrape {
        memtable_bytes: s.memtable_bytes,
        sealed_memtables: s.sealed_memtables,
        pending_flushes: s.pending_flushes,
        journals: s.journals,
        journal_bytes: s.journal_bytes,
        active_compactions: s.active_compactions,
        compactions: s.compactions,
        segments: s.segments,
        block_cache_bytes: s.block_cache_bytes,
        block_cache_capacity_bytes: s.block_cache_capacity_bytes,
        read_cache_hits: s.read_cache_hits,
        read_cache_misses: s.read_cache_misses,
        read_cache_bytes: s.read_cache_bytes,
        fsync_seconds: s.fsync_seconds.map(histogram),
        group_commit_batches: s.group_commit_batches.map(histogram),
    }
}

async fn handle_request(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    secure: bool,
    req: Request<Incoming>,
    request_id: &str,
    track: &mut Track,
) -> Response<Full<Bytes>> {
    let shared = shared.clone();
    let json11 = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("x-amz-json-1.1"));
    let content_type = if json11 {
        "application/x-amz-json-1.1"
    } else {
        "application/x-amz-json-1.0"
    };

    if req.method() == Method::GET || req.method() == Method::HEAD {
        if req.uri().path() == "/" {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let body = format!("healthy: {host}");
            track.counted = false;
            return finish(StatusCode::OK, "text/plain", request_id, body.into_bytes());
        }
        track.counted = false;
        return finish(StatusCode::NOT_FOUND, "text/plain", request_id, Vec::new());
    }
    // DynamoDB limits the request line and the headers to 16 KB each.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if req.uri().to_string().len() > MAX_LINE || header_bytes > MAX_LINE {
        track.error = Some("BadRequest".into());
        return finish(
            StatusCode::BAD_REQUEST,
            "text/plain",
            request_id,
            Vec::new(),
        );
    }
    if req.method() != Method::POST {
        track.error = Some("MethodNotAllowed".into());
        return finish(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            request_id,
            Vec::new(),
        );
    }

    if req.uri().path() != "/" {
        track.error = Some("NotFound".into());
        return finish(StatusCode::NOT_FOUND, "text/plain", request_id, Vec::new());
    }
    let declared_len = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let accept = accepted_compression(req.headers());
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let gzip = req
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);

    let (parts, body) = req.into_parts();
    let body = match read_body(body, declared_len).await {
        Ok(b) => b,
        Err(e) => return track.edge_error(&e, content_type, request_id),
    };

    // Authentication sees the request as it was signed: before the body is decompressed.
    let identity = {
        // `--auth none` looks at the Authorization header alone: no list of every header.
        // Enforced, the list is on the stack unless the request has very many headers.
        const ON_STACK: usize = 24;
        let mut stack: [(&str, &[u8]); ON_STACK] = [("", &[]); ON_STACK];
        let all: Vec<(&str, &[u8])>;
        let one: [(&str, &[u8]); 1];
        let headers: &[(&str, &[u8])] = match &shared.auth {
            auth::AuthMode::Enforced(_) if parts.headers.len() <= ON_STACK => {
                for (slot, (k, v)) in stack.iter_mut().zip(parts.headers.iter()) {
                    *slot = (k.as_str(), v.as_bytes());
                }
                &stack[..parts.headers.len()]
            }
            auth::AuthMode::Enforced(_) => {
                all = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_bytes()))
                    .collect();
                &all
            }
            auth::AuthMode::None => match parts.headers.get(hyper::header::AUTHORIZATION) {
                Some(v) => {
                    one = [("authorization", v.as_bytes())];
                    &one
                }
                None => &[],
            },
        };
        let incoming = auth::Incoming {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers,
            body: &body,
        };
        match auth::authenticate(&shared.auth, &shared.account, &incoming) {
            Ok(id) => id,
            Err(e) => return track.edge_error(&e, content_type, request_id),
        }
    };
    // One database per access key and region (DynamoDB Local without -sharedDb): the
    // credential the request was authenticated with chooses it.
    let chosen = match &shared.databases {
        None => None,
        Some(dbs) => {
            let cred = crate::databases::credential(
                parts
                    .headers
                    .get(hyper::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                parts.uri.query(),
            );
            let cred = cred.as_ref().map(|(k, r)| (k.as_str(), r.as_deref()));
            match dbs.engine_for(cred) {
                Ok(None) => None,
                Ok(Some((engine, opened))) => {
                    if opened {
                        crate::attach_services(&engine, &shared.services);
                    }
                    Some(engine)
                }
                Err(e) => {
                    return track.edge_error(&EdgeError::Database(e), content_type, request_id)
                }
            }
        }
    };
    let engine: &Arc<ferrodyn_core::Engine> = chosen.as_ref().unwrap_or(&shared.engine);

    let body = match gzip.as_deref() {
        None | Some("identity") | Some("") => body,
        Some(enc) => match decode_body(enc, &body) {
            Ok(b) => b,
            Err(e) => return track.edge_error(&e, content_type, request_id),
        },
    };

    let Some((api, op)) = target.as_deref().and_then(ops::parse_target) else {
        return track.edge_error(&EdgeError::UnknownOperation, content_type, request_id);
    };
    track.op = shared.metrics.operation(op);
    if shared.slow_request.is_some() {
        track.body = Some(body.clone());
    }
    let connection = authz::Connection {
        source: peer.ip(),
        secure,
    };
    // Only requests that may leave a record pay for the context (reads only when audited).
    let audited = engine.audits() && (ops::is_write(api, op) || engine.config().audit.reads);
    let audit = audited.then(|| AuditContext {
        principal: identity
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |i| i.key.name.clone()),
        principal_arn: identity
            .as_ref()
            .map(|i| i.arn().to_owned())
            .unwrap_or_default(),
        source: peer.to_string(),
        request_id: request_id.to_owned(),
        operation: op.to_owned(),
    });
    // Only DescribeEndpoints reads the address the request came to.
    let host = (op == "DescribeEndpoints")
        .then(|| {
            parts
                .headers
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .map(str::to_owned)
        })
        .flatten();
    let run = move |engine: &ferrodyn_core::Engine, op: &str, body: &[u8]| {
        let call = || match &identity {
            None => ops::dispatch_to(engine, None, api, op, body, host.as_deref()),
            Some(identity) => {
                let caller = authz::Caller {
                    identity,
                    connection,
                };
                ops::dispatch_to(engine, Some(&caller), api, op, body, host.as_deref())
            }
        };
        match &audit {
            None => call(),
            Some(ctx) => {
                let result = engine.with_audit_context(ctx, call);
                audit_outcome(engine, ctx, api, op, body, &result);
                result
            }
        }
    };

    let result = if engine.is_shared() {
        // On shared storage every call waits on the database, reads included: keep them all
        // off the async workers (their writes are durable when they return).
        let engine2 = engine.clone();
        let op = op.to_owned();
        match tokio::task::spawn_blocking(move || run(&engine2, &op, &body)).await {
            Ok(r) => r,
            Err(e) => Err(ferrodyn_model::Error::internal(format!(
                "handler failed: {e}"
            ))),
        }
    } else if ops::is_item_write(api, op) {
        // Commit now, then wait for the group commit that covers it without holding a thread.
        let (result, ticket) = engine.deferring_durability(|| run(engine, op, &body));
        match engine.durable(ticket).await {
            Ok(()) => result,
            Err(e) => Err(ferrodyn_core::storage_err(e)),
        }
    } else if (ops::is_write(api, op) && engine.waits_for_durability())
        || ops::is_blocking_admin(api, op)
    {
        // Durable writes block on fsync (shared by group commit), trigger operations read
        // streams: keep them off the async workers.
        let engine2 = engine.clone();
        let op = op.to_owned();
        match tokio::task::spawn_blocking(move || run(&engine2, &op, &body)).await {
            Ok(r) => r,
            Err(e) => Err(ferrodyn_model::Error::internal(format!(
                "handler failed: {e}"
            ))),
        }
    } else {
        run(engine, op, &body)
    };
    match result {
        Ok(bytes) if bytes.len() >= COMPRESS_THRESHOLD && accept.is_some() => {
            let enc = accept.unwrap_or(Compression::Gzip);
            match compress(enc, &bytes) {
                Some(z) => {
                    let mut resp = finish(StatusCode::OK, content_type, request_id, z);
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_ENCODING,
                        HeaderValue::from_static(enc.name()),
                    );
                    resp
                }
                None => finish(StatusCode::OK, content_type, request_id, bytes),
            }
        }
        Ok(bytes) => finish(StatusCode::OK, content_type, request_id, bytes),
        Err(err) => {
            track.error = Some(wire::error_code(&err).into());
            domain_error(&err, content_type, request_id)
        }
    }
}

/// The audit records the engine does not write itself: a failed request that would have
/// changed data or schema (outcome = its error type), and, with read auditing, a read. A
/// record that cannot be written is logged; the request's answer stands.
fn audit_outcome(
    engine: &ferrodyn_core::Engine,
    ctx: &AuditContext,
    api: ops::Api,
    op: &str,
    body: &[u8],
    result: &Result<Vec<u8>, ferrodyn_model::Error>,
) {
    let write = ops::is_write(api, op);
    let appended = match result {
        Err(e) if write => {
            let (table, key) = ops::audit_target(body);
            engine.audit_failure(ctx, table.as_deref(), key.as_ref(), wire::error_code(e))
        }
        Ok(_) if !write && engine.config().audit.reads => {
            let (table, key) = ops::audit_target(body);
            engine.audit_read(ctx, table.as_deref(), key.as_ref())
        }
        _ => return,
    };
    if let Err(e) = appended {
        tracing::error!(error = %e, request_id = %ctx.request_id, "audit record not written");
    }
}

/// Bodies over the limit are still read (and discarded) up to this size, so that the client
/// receives the 413 answer instead of a broken pipe; beyond it the connection is dropped.
const MAX_DRAIN: u64 = 128 * 1024 * 1024;

/// Reads a request body of at most [`MAX_BODY`] bytes.
async fn read_body(mut body: Incoming, declared_len: Option<u64>) -> Result<Bytes, EdgeError> {
    let mut too_large = declared_len.is_some_and(|n| n > MAX_BODY as u64);
    let mut buf = Vec::with_capacity(declared_len.unwrap_or(0).min(MAX_BODY as u64) as usize);
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(EdgeError::RequestTooLarge);
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        seen += data.len() as u64;
        if !too_large && buf.len() + data.len() > MAX_BODY {
            too_large = true;
            buf = Vec::new();
        }
        if !too_large {
            buf.extend_from_slice(data);
        }
        if seen > MAX_DRAIN {
            break;
        }
    }
    if too_large {
        return Err(EdgeError::RequestTooLarge);
    }
    Ok(Bytes::from(buf))
}

/// Request ids: a random per-process prefix and a counter (unique, and no syscall per request).
fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(32);
    for word in [prefix, n] {
        for shift in (0..16).rev() {
            id.push(char::from(
                b"0123456789ABCDEF"[((word >> (shift * 4)) & 0xf) as usize],
            ));
        }
    }
    id
}

/// Responses at least this large are compressed when the client accepts it (as DynamoDB does).
const COMPRESS_THRESHOLD: usize = 4096;

#[derive(Clone, Copy)]
enum Compression {
    Gzip,
    Deflate,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
        }
    }
}

/// The response encoding to use, from the FIRST Accept-Encoding header (as DynamoDB reads it):
/// the highest q-value wins; at equal q an explicitly named encoding beats `*`, then the earlier
/// one; `*` stands for gzip unless gzip is named, else deflate; `identity` and unknown names are
/// ignored; q=0 refuses.
fn accepted_compression(headers: &hyper::HeaderMap) -> Option<Compression> {
    let value = headers.get(hyper::header::ACCEPT_ENCODING)?.to_str().ok()?;
    // (q, explicit, order) per encoding; None = not acceptable.
    let mut gzip: Option<(f32, bool, usize)> = None;
    let mut deflate: Option<(f32, bool, usize)> = None;
    let mut wildcard: Option<(f32, usize)> = None;
    for (order, part) in value.split(',').enumerate() {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        // DynamoDB's reading of quality values: the first parameter containing "q=" counts; its
        // value is trimmed, clamped to [0, 1], and taken as 1 when it does not parse.
        let q = it
            .find_map(|param| param.find("q=").map(|i| param[i + 2..].trim().to_owned()))
            .map(|v| v.parse::<f32>().map(|q| q.clamp(0.0, 1.0)).unwrap_or(1.0))
            .unwrap_or(1.0);
        let better = |cur: Option<(f32, bool, usize)>| cur.is_none_or(|(c, _, _)| q > c);
        match name.as_str() {
            "gzip" if better(gzip) => gzip = Some((q, true, order)),
            "deflate" if better(deflate) => deflate = Some((q, true, order)),
            "*" if wildcard.is_none_or(|(c, _)| q > c) => wildcard = Some((q, order)),
            _ => {}
        }
    }
    if let Some((q, order)) = wildcard {
        gzip = gzip.or(Some((q, false, order)));
        deflate = deflate.or(Some((q, false, order)));
    }
    let rank = |c: Option<(f32, bool, usize)>| c.filter(|(q, _, _)| *q > 0.0);
    match (rank(gzip), rank(deflate)) {
        (None, None) => None,
        (Some(_), None) => Some(Compression::Gzip),
        (None, Some(_)) => Some(Compression::Deflate),
        (Some(g), Some(d)) => {
            let better_deflate =
                d.0 > g.0 || (d.0 == g.0 && ((d.1 && !g.1) || (d.1 == g.1 && d.2 < g.2)));
            Some(if better_deflate {
                Compression::Deflate
            } else {
                Compression::Gzip
            })
        }
    }
}

fn compress(enc: Compression, body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let level = flate2::Compression::new(6);
    match enc {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
            e.write_all(body).ok()?;
            e.finish().ok()
        }
        Compression::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 4), level);
            e.write_all(body).ok()?;
            e.finish().ok()
        }
    }
}

/// Decodes a compressed request body (gzip, possibly several members, or zlib "deflate"),
/// never inflating past [`MAX_BODY`].
fn decode_body(encoding: &str, body: &[u8]) -> Result<Bytes, EdgeError> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        _ => return Err(EdgeError::BadContentEncoding),
    };
    match read {
        Ok(_) if out.len() > MAX_BODY => Err(EdgeError::RequestTooLarge),
        Ok(0) => Err(EdgeError::BadContentEncoding),
        Ok(_) => Ok(Bytes::from(out)),
        Err(_) => Err(EdgeError::BadContentEncoding),
    }
}

fn domain_error(
    err: &ferrodyn_model::Error,
    content_type: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    // An internal error is logged while it is mapped: give that line the request id.
    let (status, ty, msg) = if wire::error_code(err) == "InternalServerError" {
        tracing::error_span!("request", request_id = %request_id)
            .in_scope(|| wire::error_response_parts(err))
    } else {
        wire::error_response_parts(err)
    };
    let body = wire::domain_error_body(err, &ty, &msg);
    finish(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        content_type,
        request_id,
        body,
    )
}

fn edge_error(err: &EdgeError, content_type: &str, request_id: &str) -> Response<Full<Bytes>> {
    let (status, ty, msg) = wire::edge_error_parts(err);
    let body = wire::error_body(&ty, &msg, None);
    finish(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        content_type,
        request_id,
        body,
    )
}

fn finish(
    status: StatusCode,
    content_type: &str,
    request_id: &str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let crc = crc32fast::hash(&body);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/x-amz-json-1.0")),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    h.insert("x-amz-crc32", HeaderValue::from(crc));
    h.insert(hyper::header::SERVER, HeaderValue::from_static("Server"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_32_uppercase_hex_digits_and_unique() {
        let a = next_request_id();
        let b = next_request_id();
        for id in [&a, &b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
        }
        assert_eq!(a[..16], b[..16], "same process prefix");
        let (x, y) = (
            u64::from_str_radix(&a[16..], 16).unwrap(),
            u64::from_str_radix(&b[16..], 16).unwrap(),
        );
        assert!(y > x, "{a} then {b}");
    }
}
