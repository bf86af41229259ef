//! The harness against a real PostgreSQL: start, SQL, restart, stop, crash, standby, promote.

use ferrodyn_pgtest::PgServer;

#[test]
fn start_answers_sql_and_drop_removes_everything() {
    let pg = PgServer::start().expect("start PostgreSQL");
    assert_eq!(pg.psql("SELECT 1").unwrap().trim(), "1");
    assert_eq!(
        pg.url(),
        format!("postgres://ferrodyn@127.0.0.1:{}/ferrodyn", pg.port())
    );
    assert_eq!(
        pg.psql("SELECT current_database()").unwrap().trim(),
        "ferrodyn"
    );
    let dir = pg.dir().to_path_buf();
    let port = pg.port();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    drop(pg);
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port} after drop"
    );
}

fn count(pg: &PgServer, table: &str) -> String {
    pg.psql(&format!("SELECT count(*) FROM {table}"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn rows_survive_restart_and_stop_start() {
    let pg = PgServer::start().expect("start PostgreSQL");
    pg.psql("CREATE TABLE t (k int PRIMARY KEY, v text)")
        .unwrap();
    pg.psql("INSERT INTO t VALUES (1, 'one')").unwrap();
    let port = pg.port();

    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_eq!(
        pg.psql("SELECT v FROM t WHERE k = 1").unwrap().trim(),
        "one"
    );

    pg.stop().unwrap();
    assert!(pg.psql("SELECT 1").is_err(), "a stopped server answered");
    pg.start_again().unwrap();
    pg.psql("INSERT INTO t VALUES (2, 'two')").unwrap();
    assert_eq!(count(&pg, "t"), "2");
}

#[test]
fn rows_survive_kill9() {
    let pg = PgServer::start().expect("start PostgreSQL");
    pg.psql("CREATE TABLE t (k int PRIMARY KEY)").unwrap();
    pg.psql("INSERT INTO t SELECT generate_series(1, 100)")
        .unwrap();

    pg.kill9().unwrap();
    assert!(pg.psql("SELECT 1").is_err(), "a killed server answered");
    pg.start_again().unwrap();
    assert_eq!(count(&pg, "t"), "100");
    pg.psql("INSERT INTO t VALUES (101)").unwrap();
    assert_eq!(count(&pg, "t"), "101");
}

#[test]
fn standby_follows_the_primary_and_promotes() {
    let primary = PgServer::start().expect("start PostgreSQL");
    primary.psql("CREATE TABLE t (k int PRIMARY KEY)").unwrap();
    primary.psql("INSERT INTO t VALUES (1)").unwrap();

    let standby = primary.start_standby().expect("start a standby");
    assert_ne!(standby.port(), primary.port());
    assert_ne!(standby.dir(), primary.dir());
    assert_eq!(
        standby.url(),
        format!("postgres://ferrodyn@127.0.0.1:{}/ferrodyn", standby.port())
    );
    assert_eq!(
        standby.psql("SELECT pg_is_in_recovery()").unwrap().trim(),
        "t"
    );
    let refused = standby.psql("INSERT INTO t VALUES (99)").unwrap_err();
    assert!(
        refused.to_string().contains("read-only transaction"),
        "{refused}"
    );

    primary.psql("INSERT INTO t VALUES (2)").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(&standby, "t") != "2" {
        assert!(
            std::time::Instant::now() < deadline,
            "the standby did not see the primary's insert within 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    standby.promote().unwrap();
    assert_eq!(
        standby.psql("SELECT pg_is_in_recovery()").unwrap().trim(),
        "f"
    );
    standby.psql("INSERT INTO t VALUES (3)").unwrap();
    assert_eq!(count(&standby, "t"), "3");
    // The old primary is independent now.
    assert_eq!(count(&primary, "t"), "2");
}

#[test]
fn a_panicking_test_leaves_no_server_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let pg = PgServer::start().expect("start PostgreSQL");
        tx.send((pg.dir().to_path_buf(), pg.port())).unwrap();
        panic!("a failing test");
    });
    assert!(outcome.is_err());
    let (dir, port) = rx.recv().unwrap();
    assert!(
        !dir.exists(),
        "{} still exists after unwinding",
        dir.display()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port} after unwinding"
    );
}
