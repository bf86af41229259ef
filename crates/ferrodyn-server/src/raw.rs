//! [`RawFront`]: the HTTP front end driven by bytes instead of a socket, for fuzzing and for
//! tests that need exact control over what goes on the wire.
//!
//! The bytes take the same path as a TCP connection's: hyper's HTTP/1.1 parser, the body
//! limits, authentication (`--auth none`), routing, shape validation, the engine, the error
//! mapping of `wire`, and the response headers. Only the socket is replaced (by an in-memory
//! duplex pipe); no listener, no TLS, and no export or trigger service is started.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrodyn_core::Engine;
use ferrodyn_metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{auth, http, operation_names, Shared};

/// One engine's HTTP front without a socket; see the module docs.
pub struct RawFront {
    shared: Arc<Shared>,
}

impl RawFront {
    /// A front end for `engine` that accepts any well-formed request (`--auth none`).
    pub fn new(engine: Arc<Engine>) -> RawFront {
        RawFront {
            shared: Arc::new(Shared {
                account: Arc::from(engine.config().account.as_str()),
                engine,
                auth: auth::AuthMode::None,
                tls: None,
                metrics: Arc::new(Metrics::new(operation_names())),
                slow_request: None,
                stopping: std::sync::atomic::AtomicBool::new(false),
                databases: None,
                services: crate::Services::default(),
            }),
        }
    }

    /// Serves one connection on which a client sent exactly `input` and then closed its
    /// sending side; returns every byte the server wrote back (zero or more responses).
    /// Must be called inside a Tokio runtime (a current-thread one is enough).
    pub async fn exchange(&self, input: &[u8]) -> Vec<u8> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        // Held until the exchange ends: dropping it would start a graceful shutdown.
        let (_keep_open, shutdown) = tokio::sync::watch::channel(false);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let serve = http::serve_connection(
            server,
            peer,
            false,
            self.shared.clone(),
            shutdown,
            http::Listener::Api,
            true,
        );
        let (mut rd, mut wr) = tokio::io::split(client);
        let send = async move {
            // The server may close first (a refused request): later bytes are simply unread.
            let _ = wr.write_all(input).await;
            let _ = wr.shutdown().await;
        };
        let receive = async move {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let ((), (), out) = tokio::join!(serve, send, receive);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrodyn_core::EngineConfig;
    use ferrodyn_storage::MemoryStorage;

    fn front() -> RawFront {
        let engine = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        RawFront::new(Arc::new(engine))
    }

    fn exchange(f: &RawFront, input: &[u8]) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        String::from_utf8_lossy(&rt.block_on(f.exchange(input))).into_owned()
    }

    #[test]
    fn requests_are_answered_as_on_a_socket() {
        let f = front();
        let body = "{}";
        let req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\
             Content-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // Two requests on one keep-alive connection: two answers.
        let out = exchange(&f, format!("{req}{req}").as_bytes());
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert!(out.contains(r#"{"TableNames":[]}"#), "{out}");
        assert!(out.to_ascii_lowercase().contains("x-amz-crc32"), "{out}");
        let out = exchange(
            &f,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        // No Authorization header: refused before routing, as DynamoDB does.
        assert!(out.contains("MissingAuthenticationTokenException"), "{out}");
        // Garbage gets hyper's answer or none, never a hang.
        let out = exchange(&f, b"\x00\x01garbage\r\n\r\n");
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 400"), "{out}");
        assert_eq!(exchange(&f, b""), "");
    }
}
