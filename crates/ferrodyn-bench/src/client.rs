//! Minimal DynamoDB JSON 1.0 client: one keep-alive HTTP/1.1 connection, SigV4
//! signed `POST /` requests, error classification by `__type`.
//!
//! Owns: endpoint parsing, connection setup/reconnection, request signing and
//! response classification.
//!
//! Invariants:
//! - A [`Conn`] owns at most one TCP connection and sends one request at a time,
//!   so each worker measures true request latency (no pipelining).
//! - After a transport error or a timeout the connection state is unknown, so it
//!   is dropped and the next call reconnects.
//! - Error classification never panics on any response body: non-JSON bodies
//!   and bodies without `__type` map to `HTTP<status>`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::sigv4::{amz_date, Signer};
use crate::workload::Target;

const CONTENT_TYPE_JSON: &str = "application/x-amz-json-1.0";

/// A parsed `http://host[:port]` endpoint, resolved once.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Value of the `Host` header (authority as given).
    pub host: String,
    pub addr: SocketAddr,
}

impl Endpoint {
    /// Parses and resolves `url`. Only plain `http://` is supported.
    pub async fn resolve(url: &str) -> anyhow::Result<Endpoint> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            bail!(
                "https endpoints are not supported; use http:// (DynamoDB also serves plain HTTP, \
                 e.g. http://dynamodb.us-east-1.amazonaws.com)"
            );
        } else {
            url
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            bail!("endpoint {url:?} has no host");
        }
        // A port is present when the text after the last ':' is digits and not
        // inside an IPv6 bracket.
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let connect = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&connect)
            .await
            .with_context(|| format!("resolving {connect}"))?
            .next()
            .ok_or_else(|| anyhow!("{connect} resolved to no address"))?;
        Ok(Endpoint {
            host: authority.to_string(),
            addr,
        })
    }
}

/// Outcome of one request that got an answer or failed in transport.
#[derive(Debug)]
pub enum CallError {
    /// The service answered with an error; the string is the `__type` short name
    /// (`ValidationException`, ...) or `HTTP<status>`.
    Service(String, Bytes),
    /// Connecting, sending or receiving failed.
    Transport(&'static str),
}

impl CallError {
    pub fn kind(&self) -> &str {
        match self {
            CallError::Service(t, _) => t,
            CallError::Transport(t) => t,
        }
    }
}

/// One keep-alive connection plus everything needed to sign requests on it.
pub struct Conn {
    endpoint: std::sync::Arc<Endpoint>,
    signer: Signer,
    sender: Option<SendRequest<Full<Bytes>>>,
    timeout: Duration,
    host: HeaderValue,
    content_type: HeaderValue,
    token: Option<HeaderValue>,
    /// Cached `x-amz-date` for `date_secs`.
    date_secs: u64,
    date: [u8; 16],
    date_value: HeaderValue,
}

impl Conn {
    /// Creates an unconnected client; the first call connects.
    pub fn new(
        endpoint: std::sync::Arc<Endpoint>,
        signer: Signer,
        timeout: Duration,
    ) -> anyhow::Result<Conn> {
        let host = HeaderValue::from_str(&endpoint.host).context("endpoint host")?;
        let token = match &signer.credentials().session_token {
            Some(t) => Some(HeaderValue::from_str(t).context("session token")?),
            None => None,
        };
        Ok(Conn {
            endpoint,
            signer,
            sender: None,
            timeout,
            host,
            content_type: HeaderValue::from_static(CONTENT_TYPE_JSON),
            token,
            date_secs: u64::MAX,
            date: [b'0'; 16],
            date_value: HeaderValue::from_static("19700101T000000Z"),
        })
    }

    /// Opens the TCP connection now (reports connect errors early).
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.endpoint.addr))
            .await
            .map_err(|_| anyhow!("connect to {} timed out", self.endpoint.addr))?
            .with_context(|| format!("connecting to {}", self.endpoint.addr))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes;
            // errors surface through the sender, so the result is not needed here.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    fn refresh_date(&mut self) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs != self.date_secs {
            self.date = amz_date(secs);
            // The date is 16 ASCII digits/letters, always a valid header value.
            self.date_value = HeaderValue::from_bytes(&self.date)
                .unwrap_or_else(|_| HeaderValue::from_static("19700101T000000Z"));
            self.date_secs = secs;
        }
    }

    /// Sends one signed request and returns the response body of a 200 answer.
    pub async fn call(&mut self, target: Target, body: Bytes) -> Result<Bytes, CallError> {
        self.call_target(target.header(), body).await
    }

    /// Like [`Conn::call`] with the full `X-Amz-Target` value (e.g.
    /// `DynamoDBStreams_20120810.GetRecords`), for operations [`Target`] does not name.
    pub async fn call_target(
        &mut self,
        target_str: &'static str,
        body: Bytes,
    ) -> Result<Bytes, CallError> {
        if self.sender.is_none() && self.connect().await.is_err() {
            return Err(CallError::Transport("ConnectError"));
        }
        self.refresh_date();
        let date_str = std::str::from_utf8(&self.date).unwrap_or("19700101T000000Z");
        let auth = match &self.token {
            None => {
                let headers = [
                    ("content-type", CONTENT_TYPE_JSON),
                    ("host", self.endpoint.host.as_str()),
                    ("x-amz-date", date_str),
                    ("x-amz-target", target_str),
                ];
                self.signer
                    .sign("POST", "/", "", &headers, &self.date, &body)
            }
            Some(tok) => {
                let headers = [
                    ("content-type", CONTENT_TYPE_JSON),
                    ("host", self.endpoint.host.as_str()),
                    ("x-amz-date", date_str),
                    ("x-amz-security-token", tok.to_str().unwrap_or_default()),
                    ("x-amz-target", target_str),
                ];
                self.signer
                    .sign("POST", "/", "", &headers, &self.date, &body)
            }
        };

        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = hyper::Uri::from_static("/");
        let h = req.headers_mut();
        h.insert(HOST, self.host.clone());
        h.insert(CONTENT_TYPE, self.content_type.clone());
        h.insert("x-amz-date", self.date_value.clone());
        h.insert("x-amz-target", HeaderValue::from_static(target_str));
        if let Some(tok) = &self.token {
            h.insert("x-amz-security-token", tok.clone());
        }
        match HeaderValue::try_from(auth) {
            Ok(v) => {
                h.insert(AUTHORIZATION, v);
            }
            Err(_) => return Err(CallError::Transport("SigningError")),
        }

        let Some(sender) = self.sender.as_mut() else {
            return Err(CallError::Transport("ConnectError"));
        };
        let timeout = self.timeout;
        let exchange = async {
            sender.ready().await.map_err(|_| "ConnectionClosed")?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|_| "ConnectionError")?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|_| "ConnectionError")?
                .to_bytes();
            Ok::<_, &'static str>((status, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                self.sender = None;
                Err(CallError::Transport("Timeout"))
            }
            Ok(Err(kind)) => {
                self.sender = None;
                Err(CallError::Transport(kind))
            }
            Ok(Ok((200, body))) => Ok(body),
            Ok(Ok((status, body))) => Err(CallError::Service(error_type(status, &body), body)),
        }
    }
}

/// Short error type from a DynamoDB error body: the part of `__type` after `#`.
pub fn error_type(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let ty = parsed
        .as_ref()
        .and_then(|v| v.get("__type"))
        .and_then(|t| t.as_str());
    match ty {
        Some(t) => t.rsplit('#').next().unwrap_or(t).to_string(),
        None => format!("HTTP{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_are_short_names() {
        assert_eq!(
            error_type(400, br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"x"}"#),
            "ResourceNotFoundException"
        );
        assert_eq!(
            error_type(400, br#"{"__type":"ThrottlingException"}"#),
            "ThrottlingException"
        );
        assert_eq!(error_type(503, b"not json"), "HTTP503");
        assert_eq!(error_type(500, b"{}"), "HTTP500");
    }

    #[tokio::test]
    async fn endpoint_parsing() {
        let e = Endpoint::resolve("http://127.0.0.1:8000").await.unwrap();
        assert_eq!(e.host, "127.0.0.1:8000");
        assert_eq!(e.addr.port(), 8000);
        let e = Endpoint::resolve("127.0.0.1:9/").await.unwrap();
        assert_eq!(e.host, "127.0.0.1:9");
        let e = Endpoint::resolve("http://[::1]:7000").await.unwrap();
        assert_eq!(e.addr.port(), 7000);
        let e = Endpoint::resolve("http://127.0.0.1").await.unwrap();
        assert_eq!(e.addr.port(), 80);
        assert!(Endpoint::resolve("https://x").await.is_err());
        assert!(Endpoint::resolve("http://").await.is_err());
    }
}
