//! The publisher against a real nats-server with JetStream (ferrodyn-natstest): messages and
//! headers stored, duplicates dropped by the server, reconnection after a restart and a crash,
//! and bounded errors when the server is gone.

use std::thread;
use std::time::{Duration, Instant};

use ferrodyn_natsout::{NatsError, NatsPublisher};
use ferrodyn_natstest::NatsServer;

const TIMEOUT: Duration = Duration::from_secs(10);

fn publisher(nats: &NatsServer) -> NatsPublisher {
    NatsPublisher::connect(&nats.url(), TIMEOUT).expect("connect")
}

/// A stored message: its headers as sorted (name, value) pairs, and its payload.
type Stored = (Vec<(String, String)>, Vec<u8>);

/// Reads every message of a stream back with the async client, in sequence order.
fn stored(nats: &NatsServer, stream: &str) -> Vec<Stored> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut handle = js.get_stream(stream).await.unwrap();
        let count = handle.info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=count {
            let message = handle.get_raw_message(seq).await.unwrap();
            let mut headers: Vec<(String, String)> = message
                .headers
                .iter()
                .flat_map(|(name, values)| {
                    values
                        .iter()
                        .map(move |v| (name.to_string(), v.as_str().to_owned()))
                })
                .collect();
            headers.sort();
            out.push((headers, message.payload.to_vec()));
        }
        out
    })
}

#[test]
fn publishes_with_headers_and_message_id() {
    let nats = NatsServer::start().unwrap();
    let publisher = publisher(&nats);
    assert!(publisher.is_connected());
    assert!(publisher
        .ensure_stream("ORDERS", &["ferrodyn.orders.>"])
        .unwrap());
    // A second call finds the stream.
    assert!(!publisher
        .ensure_stream("ORDERS", &["ferrodyn.orders.>"])
        .unwrap());

    for (i, event) in ["INSERT", "MODIFY", "REMOVE"].iter().enumerate() {
        let ack = publisher
            .publish(
                "ferrodyn.orders.changes",
                &[("Ferrodyn-Table", "orders"), ("Ferrodyn-Event-Name", event)],
                format!("{{\"n\":{i}}}").as_bytes(),
                &format!("orders-{i}"),
            )
            .unwrap();
        assert_eq!(ack.stream, "ORDERS");
        assert_eq!(ack.sequence, i as u64 + 1);
        assert!(!ack.duplicate);
    }
    let messages = stored(&nats, "ORDERS");
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[1].0,
        [
            ("Ferrodyn-Event-Name".to_owned(), "MODIFY".to_owned()),
            ("Ferrodyn-Table".to_owned(), "orders".to_owned()),
            ("Nats-Msg-Id".to_owned(), "orders-1".to_owned()),
        ]
    );
    assert_eq!(messages[2].1, b"{\"n\":2}");

    // Arguments NATS would refuse are refused before anything is sent.
    for (subject, headers, id) in [
        ("ferrodyn.orders.>", &[][..], "x"),
        ("a b", &[][..], "x"),
        ("ferrodyn.orders.x", &[("Bad:Name", "v")][..], "x"),
        ("ferrodyn.orders.x", &[("Name", "line\r\nbreak")][..], "x"),
        ("ferrodyn.orders.x", &[][..], ""),
    ] {
        let err = publisher.publish(subject, headers, b"", id).unwrap_err();
        assert!(matches!(err, NatsError::InvalidArgument(_)), "{err:?}");
    }
    assert!(matches!(
        publisher.ensure_stream("BAD.NAME", &["x"]),
        Err(NatsError::InvalidArgument(_))
    ));
}

#[test]
fn a_redelivered_message_id_is_dropped_by_the_server() {
    let nats = NatsServer::start().unwrap();
    let publisher = publisher(&nats);
    publisher.ensure_stream("EVENTS", &["events.>"]).unwrap();
    let first = publisher
        .publish("events.a", &[], b"one", "seq-000001")
        .unwrap();
    let again = publisher
        .publish("events.a", &[], b"one", "seq-000001")
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    let next = publisher
        .publish("events.a", &[], b"two", "seq-000002")
        .unwrap();
    assert!(!next.duplicate);
    assert_eq!(next.sequence, first.sequence + 1);
    assert_eq!(stored(&nats, "EVENTS").len(), 2);

    // A redelivery from a new connection (e.g. after a restart of the sender) is dropped too.
    drop(publisher);
    let publisher = self::publisher(&nats);
    assert!(
        publisher
            .publish("events.a", &[], b"two", "seq-000002")
            .unwrap()
            .duplicate
    );
    assert_eq!(stored(&nats, "EVENTS").len(), 2);
}

#[test]
fn reconnects_after_the_server_restarts_or_crashes() {
    let nats = NatsServer::start().unwrap();
    let publisher = publisher(&nats);
    publisher.ensure_stream("EVENTS", &["events.>"]).unwrap();
    publisher.publish("events.a", &[], b"1", "m1").unwrap();

    // A clean restart between two publishes.
    nats.stop().unwrap();
    nats.start_again().unwrap();
    let ack = publisher.publish("events.a", &[], b"2", "m2").unwrap();
    assert_eq!((ack.sequence, ack.duplicate), (2, false));

    // A crash, and a publish that starts while the server is down: it waits for the server
    // to come back (within its timeout) and succeeds.
    nats.kill9().unwrap();
    let started = Instant::now();
    thread::scope(|scope| {
        let restarter = scope.spawn(|| {
            thread::sleep(Duration::from_millis(700));
            nats.start_again().unwrap();
        });
        let ack = publisher.publish("events.a", &[], b"3", "m3").unwrap();
        assert_eq!(ack.sequence, 3);
        assert!(!ack.duplicate);
        restarter.join().unwrap();
    });
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(started.elapsed() < TIMEOUT);

    // The duplicate window survives the crash: a redelivery of m3 is dropped.
    assert!(
        publisher
            .publish("events.a", &[], b"3", "m3")
            .unwrap()
            .duplicate
    );
    assert_eq!(stored(&nats, "EVENTS").len(), 3);
    assert!(publisher.is_connected());
}

#[test]
fn a_gone_server_is_an_error_within_the_timeout() {
    let nats = NatsServer::start().unwrap();
    let short = Duration::from_millis(800);
    let publisher = NatsPublisher::connect(&nats.url(), short).unwrap();
    publisher.ensure_stream("EVENTS", &["events.>"]).unwrap();
    nats.kill9().unwrap();

    let started = Instant::now();
    let err = publisher
        .publish("events.a", &[], b"lost", "gone-1")
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, NatsError::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        waited >= short && waited < short + Duration::from_secs(2),
        "{waited:?}"
    );

    let started = Instant::now();
    let err = publisher.ensure_stream("OTHER", &["other.>"]).unwrap_err();
    assert!(matches!(err, NatsError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < short + Duration::from_secs(2));

    // Connecting to nothing fails at once; the URL's password is never shown.
    let url = format!("nats://ferrodyn:hunter2@127.0.0.1:{}", nats.port());
    let started = Instant::now();
    let err = NatsPublisher::connect(&url, short).unwrap_err();
    assert!(matches!(err, NatsError::Connect(_)), "{err:?}");
    assert!(started.elapsed() < short + Duration::from_secs(2));
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    assert!(err.to_string().contains("nats://***@127.0.0.1"), "{err}");
}

#[test]
fn a_server_that_never_answers_is_an_error_within_the_timeout() {
    // Accepts TCP connections (the kernel's backlog) but never sends NATS's INFO greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://ferrodyn:hunter2@{}", silent.local_addr().unwrap());
    let short = Duration::from_millis(500);
    let started = Instant::now();
    let err = NatsPublisher::connect(&url, short).unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, NatsError::Connect(_)), "{err:?}");
    assert!(waited < short + Duration::from_secs(2), "{waited:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn credentials_in_the_url_reach_the_server_but_not_the_messages() {
    // The test server has no authentication and accepts any credentials; what matters is that
    // a URL with them connects and that nothing shows them.
    let nats = NatsServer::start().unwrap();
    let url = nats.url().replace("nats://", "nats://ferrodyn:hunter2@");
    let publisher = NatsPublisher::connect(&url, TIMEOUT).unwrap();
    assert_eq!(
        publisher.url(),
        nats.url().replace("nats://", "nats://***@")
    );
    assert!(!format!("{publisher:?}").contains("hunter2"));
    publisher.ensure_stream("EVENTS", &["events.>"]).unwrap();
    assert_eq!(
        publisher
            .publish("events.a", &[], b"x", "c1")
            .unwrap()
            .sequence,
        1
    );
}

#[test]
fn calls_from_inside_an_async_runtime_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = runtime.block_on(async {
        NatsPublisher::connect("nats://127.0.0.1:1", Duration::from_millis(100)).unwrap_err()
    });
    assert_eq!(err, NatsError::InsideAsyncRuntime);
}
