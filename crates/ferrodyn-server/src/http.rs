//! HTTP/1.1 front end: connection handling, body limits, health check, response headers.
//!
//! Invariant: every response carries `x-amzn-RequestId`, `x-amz-crc32` (CRC32 of the exact body
//! bytes sent) and `Content-Type`; a request is never answered before its body is fully read or
//! rejected as too large.

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

use crate::ops;
use crate::wire::{self, EdgeError};
use crate::Shared;

/// DynamoDB refuses request bodies over 16 MB.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Limit of the request line and of the headers, each.
const MAX_LINE: usize = 16 * 1024;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
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
                let mut conn_shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, peer, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .max_buf_size(64 * 1024)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = conn_shutdown.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    _peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
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
            return finish(StatusCode::OK, "text/plain", &request_id, body.into_bytes());
        }
        return finish(StatusCode::NOT_FOUND, "text/plain", &request_id, Vec::new());
    }
    // DynamoDB limits the request line and the headers to 16 KB each.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if req.uri().to_string().len() > MAX_LINE || header_bytes > MAX_LINE {
        return finish(
            StatusCode::BAD_REQUEST,
            "text/plain",
            &request_id,
            Vec::new(),
        );
    }
    if req.method() != Method::POST {
        return finish(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            &request_id,
            Vec::new(),
        );
    }

    if req.uri().path() != "/" {
        return finish(StatusCode::NOT_FOUND, "text/plain", &request_id, Vec::new());
    }
    let declared_len = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let gzip = req
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);

    let body = match read_body(req.into_body(), declared_len).await {
        Ok(b) => b,
        Err(e) => return edge_error(&e, content_type, &request_id),
    };
    if let Some(enc) = gzip.as_deref() {
        if enc != "identity" {
            // Compressed requests are not supported yet; AWS answers unknown encodings like this.
            let err = ferrodyn_model::Error::Serialization(format!(
                "Unsupported Content-Encoding: {enc}"
            ));
            return domain_error(&err, content_type, &request_id);
        }
    }

    if let Err(e) = shared.auth.authenticate(authorization.as_deref()) {
        return edge_error(&e, content_type, &request_id);
    }

    let Some((api, op)) = target.as_deref().and_then(ops::parse_target) else {
        return edge_error(&EdgeError::UnknownOperation, content_type, &request_id);
    };

    let result = if ops::is_write(api, op) && shared.engine.waits_for_durability() {
        // Durable writes block on fsync (shared by group commit); keep them off the async workers.
        let shared2 = shared.clone();
        let op = op.to_owned();
        match tokio::task::spawn_blocking(move || ops::dispatch(&shared2.engine, api, &op, &body))
            .await
        {
            Ok(r) => r,
            Err(e) => Err(ferrodyn_model::Error::internal(format!(
                "handler failed: {e}"
            ))),
        }
    } else {
        ops::dispatch(&shared.engine, api, op, &body)
    };
    match result {
        Ok(bytes) => finish(StatusCode::OK, content_type, &request_id, bytes),
        Err(err) => domain_error(&err, content_type, &request_id),
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

fn domain_error(
    err: &ferrodyn_model::Error,
    content_type: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let (status, ty, msg) = wire::error_response_parts(err);
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
