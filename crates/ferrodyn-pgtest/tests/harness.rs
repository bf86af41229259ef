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
