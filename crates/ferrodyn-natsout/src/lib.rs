//! A blocking publisher to NATS JetStream: [`NatsPublisher`] connects to a server, creates a
//! stream when it is missing, and publishes messages one at a time, each with a `Nats-Msg-Id`,
//! returning only once JetStream acknowledged it (stored it, or recognised it as a duplicate).
//!
//! # Delivery contract
//!
//! * **At least once, de-duplicated by the server**: every message carries the caller's message
//!   id as `Nats-Msg-Id`; JetStream drops a second message with the same id inside the stream's
//!   duplicate window and says so in its acknowledgement ([`PublishAck::duplicate`]). A caller
//!   that retries after an error with the same id therefore never stores a message twice.
//! * **Bounded waits**: connecting, creating a stream and publishing each finish within the
//!   timeout given to [`NatsPublisher::connect`], with a result or a [`NatsError`]; never a hang
//!   or a panic, also when the server is gone.
//! * **Reconnects by itself**: the client reconnects in the background after the server
//!   restarts; a publish during the outage retries (same message id) until its deadline.
//! * **Secrets never logged**: credentials in the URL (`nats://user:password@host`,
//!   `nats://token@host`) are taken out before the URL reaches the client library, and every
//!   message and log line shows the URL with them redacted ([`redact_url`]).
//!
//! A [`NatsPublisher`] owns a small tokio runtime (one worker thread) that runs the client's
//! connection; its methods block the calling thread and must not be called from inside an
//! async runtime (they answer [`NatsError::InsideAsyncRuntime`] instead of blocking it).

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_nats::{ConnectOptions, HeaderMap, HeaderName};
use bytes::Bytes;

/// The duplicate window of streams created by [`NatsPublisher::ensure_stream`]: a redelivery
/// of the same message id within it is dropped by the server.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Longest pause between two reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Pause between two attempts of one publish.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Why a call failed. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsError {
    /// The URL is not a `nats://host:port` URL.
    InvalidUrl(String),
    /// A header name or value, a subject, a stream name or a message id that NATS refuses.
    InvalidArgument(String),
    /// No connection within the timeout (refused, unreachable, authentication failed, ...).
    Connect(String),
    /// The operation did not finish within the timeout (server gone, JetStream unavailable).
    Timeout(String),
    /// JetStream answered with an error (e.g. no stream holds the subject).
    JetStream(String),
    /// A method was called from inside an async runtime, where it would block a worker.
    InsideAsyncRuntime,
    /// The internal runtime could not be started.
    Runtime(String),
}

impl NatsError {
    /// Whether trying again later (with the same message id) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            NatsError::Connect(_) | NatsError::Timeout(_) | NatsError::JetStream(_)
        )
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsError::InvalidUrl(m) => write!(f, "invalid NATS URL: {m}"),
            NatsError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            NatsError::Connect(m) => write!(f, "cannot connect to NATS: {m}"),
            NatsError::Timeout(m) => write!(f, "NATS timeout: {m}"),
            NatsError::JetStream(m) => write!(f, "JetStream error: {m}"),
            NatsError::InsideAsyncRuntime => {
                f.write_str("the blocking NATS publisher was called from inside an async runtime")
            }
            NatsError::Runtime(m) => write!(f, "cannot start the NATS client runtime: {m}"),
        }
    }
}

impl std::error::Error for NatsError {}

/// JetStream's acknowledgement of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// The stream that stored the message.
    pub stream: String,
    /// The message's sequence number in that stream (for a duplicate: the original's).
    pub sequence: u64,
    /// True when the server already held a message with this id (within the duplicate
    /// window) and dropped this one.
    pub duplicate: bool,
}

/// A connection to one NATS server (or cluster) for publishing to JetStream.
pub struct NatsPublisher {
    /// `Some` until drop; dropped with `shutdown_background` so drop never blocks or panics.
    runtime: Option<tokio::runtime::Runtime>,
    jetstream: jetstream::Context,
    client: async_nats::Client,
    timeout: Duration,
    /// The URL with credentials redacted, for messages.
    shown_url: String,
}

impl fmt::Debug for NatsPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsPublisher")
            .field("url", &self.shown_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NatsPublisher {
    /// Connects to `url` (`nats://[user:password@|token@]host[:port]`, several separated by
    /// commas), waiting at most `timeout`; the same timeout bounds every later call.
    pub fn connect(url: &str, timeout: Duration) -> Result<NatsPublisher, NatsError> {
        refuse_inside_runtime()?;
        let target = ConnectTarget::parse(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferrodyn-nats")
            .enable_all()
            .build()
            .map_err(|e| NatsError::Runtime(e.to_string()))?;
        let mut options = match &target.credentials {
            Credentials::None => ConnectOptions::new(),
            Credentials::UserPassword(user, password) => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Credentials::Token(token) => ConnectOptions::with_token(token.clone()),
        };
        options = options
            .name("ferrodyn")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(50)
                    .saturating_mul(attempts.min(20) as u32)
                    .min(MAX_RECONNECT_DELAY)
            });
        let shown_url = target.shown.clone();
        let addresses = target.addresses.clone();
        let client = runtime
            .block_on(async {
                tokio::time::timeout(timeout, options.connect(addresses.as_slice())).await
            })
            .map_err(|_| {
                NatsError::Connect(format!("{shown_url}: no connection within {timeout:?}"))
            })?
            .map_err(|e| NatsError::Connect(format!("{shown_url}: {e}")))?;
        // The context spawns its acknowledgement task on the current runtime.
        let mut jetstream = {
            let _inside = runtime.enter();
            jetstream::new(client.clone())
        };
        jetstream.set_timeout(timeout);
        tracing::debug!(url = %shown_url, "connected to NATS");
        Ok(NatsPublisher {
            runtime: Some(runtime),
            jetstream,
            client,
            timeout,
            shown_url,
        })
    }

    /// The URL this publisher connected to, with credentials redacted.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// The timeout that bounds every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the client is connected right now (it reconnects by itself when not).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the JetStream stream `name` capturing `subjects` with a
    /// [`DEFAULT_DUPLICATE_WINDOW`], unless a stream of that name exists (left as it is).
    /// Returns true when it created the stream.
    pub fn ensure_stream(&self, name: &str, subjects: &[&str]) -> Result<bool, NatsError> {
        self.ensure_stream_with_window(name, subjects, DEFAULT_DUPLICATE_WINDOW)
    }

    /// [`ensure_stream`](Self::ensure_stream) with a chosen duplicate window.
    pub fn ensure_stream_with_window(
        &self,
        name: &str,
        subjects: &[&str],
        duplicate_window: Duration,
    ) -> Result<bool, NatsError> {
        refuse_inside_runtime()?;
        validate_stream_name(name)?;
        for subject in subjects {
            validate_subject(subject, true)?;
        }
        if subjects.is_empty() {
            return Err(NatsError::InvalidArgument(
                "a stream needs at least one subject".to_owned(),
            ));
        }
        let config = stream::Config {
            name: name.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            duplicate_window,
            ..Default::default()
        };
        let deadline = Instant::now() + self.timeout;
        self.retry_until(deadline, "creating the stream", || async {
            match self.jetstream.get_stream(name).await {
                Ok(_) => return Ok(false),
                Err(e) if is_stream_not_found(&e) => {}
                Err(e) => {
                    return Err(NatsError::JetStream(format!(
                        "looking up stream {name:?}: {e}"
                    )))
                }
            }
            match self.jetstream.create_stream(config.clone()).await {
                Ok(_) => Ok(true),
                Err(e) => Err(NatsError::JetStream(format!(
                    "creating stream {name:?}: {e}"
                ))),
            }
        })
    }

    /// Publishes one message to `subject` with the given headers and `Nats-Msg-Id: msg_id`,
    /// and waits for JetStream's acknowledgement. While the server is unreachable it retries
    /// (with the same id, so at most one copy is stored) until the timeout.
    pub fn publish(
        &self,
        subject: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
        msg_id: &str,
    ) -> Result<PublishAck, NatsError> {
        refuse_inside_runtime()?;
        validate_subject(subject, false)?;
        if msg_id.is_empty() || !valid_header_value(msg_id) {
            return Err(NatsError::InvalidArgument(format!(
                "message id {msg_id:?}: must be non-empty, without CR or LF"
            )));
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_str(name).map_err(|_| {
                NatsError::InvalidArgument(format!("header name {name:?} is not valid in NATS"))
            })?;
            if !valid_header_value(value) {
                return Err(NatsError::InvalidArgument(format!(
                    "header {name}: value contains CR or LF"
                )));
            }
            map.append(header, *value);
        }
        let payload = Bytes::copy_from_slice(payload);
        let deadline = Instant::now() + self.timeout;
        self.retry_until(deadline, "publishing", || async {
            let message = PublishMessage::build()
                .payload(payload.clone())
                .headers(map.clone())
                .message_id(msg_id);
            let ack_future = self
                .jetstream
                .send_publish(subject.to_owned(), message)
                .await
                .map_err(|e| publish_error(subject, &e))?;
            let ack = ack_future.await.map_err(|e| publish_error(subject, &e))?;
            Ok(PublishAck {
                stream: ack.stream,
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        })
    }

    /// Runs `attempt` until it succeeds, fails with a non-retryable error, or `deadline`
    /// passes (each attempt is cut off at the deadline too).
    fn retry_until<T, F, Fut>(
        &self,
        deadline: Instant,
        what: &str,
        mut attempt: F,
    ) -> Result<T, NatsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, NatsError>>,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(NatsError::Runtime("the publisher is shut down".to_owned()));
        };
        runtime.block_on(async {
            let mut last: Option<NatsError> = None;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let cause = last
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default();
                    return Err(NatsError::Timeout(format!(
                        "{what} on {} did not finish within {:?}{cause}",
                        self.shown_url, self.timeout
                    )));
                }
                match tokio::time::timeout(left, attempt()).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(e)) if !e.is_retryable() => return Err(e),
                    Ok(Err(e)) => {
                        tracing::debug!(url = %self.shown_url, error = %e, "{what}: retrying");
                        last = Some(e);
                        let pause =
                            RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                        tokio::time::sleep(pause).await;
                    }
                    Err(_) => {} // the deadline passed: reported at the top of the loop
                }
            }
        })
    }
}

impl Drop for NatsPublisher {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn refuse_inside_runtime() -> Result<(), NatsError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(NatsError::InsideAsyncRuntime);
    }
    Ok(())
}

fn is_stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    match e.kind() {
        jetstream::context::GetStreamErrorKind::JetStream(inner) => {
            inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
        }
        _ => false,
    }
}

fn publish_error(subject: &str, e: &jetstream::context::PublishError) -> NatsError {
    use jetstream::context::PublishErrorKind;
    match e.kind() {
        PublishErrorKind::TimedOut => NatsError::Timeout(format!("publishing to {subject:?}: {e}")),
        _ => NatsError::JetStream(format!("publishing to {subject:?}: {e}")),
    }
}

fn valid_header_value(value: &str) -> bool {
    !value.contains(['\r', '\n'])
}

/// A subject: dot-separated non-empty tokens without whitespace; wildcards (`*`, `>` as the
/// last token) only where a stream's subjects allow them.
fn validate_subject(subject: &str, wildcards: bool) -> Result<(), NatsError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let bad = |why: &str| {
        Err(NatsError::InvalidArgument(format!(
            "subject {subject:?}: {why}"
        )))
    };
    if subject.is_empty() {
        return bad("empty");
    }
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return bad("empty token");
        }
        if token.chars().any(char::is_whitespace) {
            return bad("contains whitespace");
        }
        let wildcard = *token == "*" || (*token == ">" && i == tokens.len() - 1);
        if wildcard && !wildcards {
            return bad("wildcards are not allowed when publishing");
        }
        if !wildcard && (token.contains('*') || token.contains('>')) {
            return bad("'*' and '>' must be whole tokens ('>' only the last)");
        }
    }
    Ok(())
}

fn validate_stream_name(name: &str) -> Result<(), NatsError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(NatsError::InvalidArgument(format!(
            "stream name {name:?}: must be non-empty, without whitespace, '.', '*', '>', '/' or '\\'"
        )));
    }
    Ok(())
}

/// Credentials taken out of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credentials {
    None,
    UserPassword(String, String),
    Token(String),
}

/// A connect URL split into what the client library sees (addresses without credentials), the
/// credentials, and what may be shown (credentials redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnectTarget {
    addresses: Vec<String>,
    credentials: Credentials,
    shown: String,
}

impl ConnectTarget {
    fn parse(url: &str) -> Result<ConnectTarget, NatsError> {
        let shown = redact_url(url);
        let mut addresses = Vec::new();
        let mut credentials = Credentials::None;
        for part in url.split(',').map(str::trim) {
            let (scheme, rest) = match part.split_once("://") {
                Some((scheme, rest)) => (scheme, rest),
                None => ("nats", part),
            };
            if !matches!(scheme, "nats" | "tls") {
                return Err(NatsError::InvalidUrl(format!(
                    "{shown}: scheme {scheme:?} (use nats:// or tls://)"
                )));
            }
            let (userinfo, host) = match rest.rsplit_once('@') {
                Some((userinfo, host)) => (Some(userinfo), host),
                None => (None, rest),
            };
            let host = host.trim_end_matches('/');
            if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
                return Err(NatsError::InvalidUrl(format!(
                    "{shown}: expected host[:port]"
                )));
            }
            if let Some(userinfo) = userinfo {
                let found = match userinfo.split_once(':') {
                    Some((user, password)) => {
                        Credentials::UserPassword(percent_decode(user), percent_decode(password))
                    }
                    None => Credentials::Token(percent_decode(userinfo)),
                };
                if credentials != Credentials::None && credentials != found {
                    return Err(NatsError::InvalidUrl(format!(
                        "{shown}: different credentials for different servers"
                    )));
                }
                credentials = found;
            }
            addresses.push(format!("{scheme}://{host}"));
        }
        Ok(ConnectTarget {
            addresses,
            credentials,
            shown,
        })
    }
}

/// The URL with any `user:password@` or `token@` replaced by `***@`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|part| {
            let (prefix, rest) = match part.find("://") {
                Some(at) => part.split_at(at + 3),
                None => ("", part),
            };
            match rest.rfind('@') {
                Some(at) => format!("{prefix}***{}", &rest[at..]),
                None => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `%XX` escapes in URL user information (invalid escapes are kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redact_url("nats://alice:s3cret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(redact_url("nats://tok@host"), "nats://***@host");
        assert_eq!(
            redact_url("nats://a:b@h1:1,nats://a:b@h2:2"),
            "nats://***@h1:1,nats://***@h2:2"
        );
        assert_eq!(redact_url("u:p@host"), "***@host");
        // A password containing '@' is redacted whole.
        assert_eq!(redact_url("nats://u:p@ss@host"), "nats://***@host");
    }

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let target = ConnectTarget::parse("nats://alice:s%40cret@127.0.0.1:4222").unwrap();
        assert_eq!(target.addresses, ["nats://127.0.0.1:4222"]);
        assert_eq!(
            target.credentials,
            Credentials::UserPassword("alice".into(), "s@cret".into())
        );
        assert!(!target.shown.contains("cret"));
        let target = ConnectTarget::parse("nats://t0ken@h:1, nats://h2:2").unwrap();
        assert_eq!(target.addresses, ["nats://h:1", "nats://h2:2"]);
        assert_eq!(target.credentials, Credentials::Token("t0ken".into()));
        let target = ConnectTarget::parse("127.0.0.1:4222").unwrap();
        assert_eq!(target.addresses, ["nats://127.0.0.1:4222"]);
        assert_eq!(target.credentials, Credentials::None);
    }

    #[test]
    fn bad_urls_are_refused_without_showing_secrets() {
        for url in [
            "http://u:secret@host",
            "nats://u:secret@",
            "nats://u:secret@host/path",
            "nats://a:secret@h1,nats://b:secret@h2",
        ] {
            let err = ConnectTarget::parse(url).unwrap_err();
            assert!(matches!(err, NatsError::InvalidUrl(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(percent_decode("%3A%2f"), ":/");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn subjects_and_stream_names() {
        assert!(validate_subject("ferrodyn.orders", false).is_ok());
        assert!(validate_subject("ferrodyn.>", true).is_ok());
        assert!(validate_subject("ferrodyn.*.x", true).is_ok());
        assert!(validate_subject("ferrodyn.>", false).is_err());
        assert!(validate_subject("a.>.b", true).is_err());
        assert!(validate_subject("a..b", false).is_err());
        assert!(validate_subject("", false).is_err());
        assert!(validate_subject("a b", false).is_err());
        assert!(validate_subject("a.b*", true).is_err());
        assert!(validate_stream_name("ORDERS").is_ok());
        assert!(validate_stream_name("a.b").is_err());
        assert!(validate_stream_name("").is_err());
    }

    #[test]
    fn retryable_errors() {
        assert!(NatsError::Timeout("x".into()).is_retryable());
        assert!(NatsError::Connect("x".into()).is_retryable());
        assert!(!NatsError::InvalidArgument("x".into()).is_retryable());
        assert!(!NatsError::InvalidUrl("x".into()).is_retryable());
    }
}
