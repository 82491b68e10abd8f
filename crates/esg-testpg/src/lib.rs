//! Tests only: a real, throw-away PostgreSQL for the tests of every crate.
//!
//! [`fresh_db`] gives each test its own new database (`esg_t_<random>`) on
//!
//! * the server `ESG_TEST_DATABASE_URL` points at (a URL of a role that may
//!   `CREATE DATABASE`), when set; else
//! * one cluster per test process, started lazily on first use: `initdb` in
//!   a temporary directory (as the `postgres` user when running as root:
//!   initdb refuses root), `fsync=off`, listening on a free port of
//!   127.0.0.1 and on a unix socket in the same directory.
//!
//! No stray server survives the test process: the cluster is stopped
//! (`pg_ctl stop -m immediate`) and its directory removed by an `atexit`
//! hook when the process exits normally (a failed test included), and by a
//! detached watchdog shell that polls the test process and does the same
//! when it disappears (killed by a timeout or a signal).
//!
//! When PostgreSQL is not installed, [`fresh_db`] prints `SKIP` and returns
//! `None` so the test can return early; under `CI=true` it panics instead:
//! in CI a missing server is a failure, not a skip.
//!
//! [`Cluster::start`] starts a private cluster for a test that stops and
//! restarts its server (unavailability and recovery).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A database of its own for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// `postgres://…/esg_t_…`.
    pub url: String,
    /// The database name.
    pub name: String,
}

/// A running PostgreSQL cluster in a temporary directory.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The cluster shared by the tests of this process.
static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// `true` when a missing PostgreSQL must fail the test (`CI=true`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A fresh, empty database for one test; `None` (after printing `SKIP`)
/// when no PostgreSQL is available outside CI. Panics under `CI=true`.
pub fn fresh_db() -> Option<TestDb> {
    let result = match std::env::var("ESG_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => create_database(url.trim()),
        _ => match shared() {
            Ok(c) => create_database(&c.url("postgres")),
            Err(e) => Err(e.clone()),
        },
    };
    or_skip(result)
}

/// A private cluster for a test that stops and restarts its server; `None`
/// (after printing `SKIP`) when PostgreSQL cannot be started outside CI.
/// Panics under `CI=true`.
pub fn own_cluster() -> Option<Cluster> {
    or_skip(Cluster::start())
}

/// `Some` on success; on failure panics under `CI=true`, else prints `SKIP`.
fn or_skip<T>(result: Result<T, String>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) if required() => panic!("PostgreSQL is required under CI=true: {e}"),
        Err(e) => {
            eprintln!("SKIP: no PostgreSQL for this test: {e}");
            None
        }
    }
}

/// The process's shared cluster, started on first use.
pub fn shared() -> &'static Result<Cluster, String> {
    SHARED.get_or_init(|| {
        let c = Cluster::start()?;
        // SAFETY: registers a plain function; it only reads SHARED.
        unsafe {
            libc::atexit(stop_shared_at_exit);
        }
        Ok(c)
    })
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(c)) = SHARED.get() {
        c.stop_and_remove();
    }
}

/// `postgres://h/db?q` with the database name replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let auth_end = rest.find(['/', '?']).map_or(rest.len(), |i| i);
    let after = &rest[auth_end..];
    let query = after.find('?').map_or("", |i| &after[i..]);
    format!("{}{}/{db}{query}", &url[..scheme_end], &rest[..auth_end])
}

fn unique_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "esg_t_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs SQL statements (simple protocol, several allowed) on `url`.
pub fn execute(url: &str, sql: &str) -> Result<(), String> {
    block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        let driver = tokio::spawn(conn);
        let r = client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{sql}: {e} {:?}", e.as_db_error().map(|d| d.message())));
        drop(client);
        let _ = driver.await;
        r
    })
}

/// The first column of the first row of `sql` on `url`, as text.
pub fn query_text(url: &str, sql: &str) -> Result<Option<String>, String> {
    Ok(query_rows(url, sql)?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}

/// Every row of `sql` on `url`, each column as text (`None` for NULL).
pub fn query_rows(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        let driver = tokio::spawn(conn);
        let r = client
            .simple_query(sql)
            .await
            .map_err(|e| format!("{sql}: {e}"));
        drop(client);
        let _ = driver.await;
        Ok(r?
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

fn create_database(admin_url: &str) -> Result<TestDb, String> {
    let name = unique_name();
    execute(admin_url, &format!("CREATE DATABASE {name}"))?;
    Ok(TestDb {
        url: with_database(admin_url, &name),
        name,
    })
}

/// Directory of `initdb`/`pg_ctl`: `$PATH`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn find_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                // Resolve Debian's symlinks to the real directory.
                let real = std::fs::canonicalize(d.join("pg_ctl")).unwrap_or(d.join("pg_ctl"));
                return Ok(real.parent().unwrap_or(&d).to_path_buf());
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "initdb not found (install the postgresql package)".to_string())?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .ok_or_else(|| "initdb not found (install the postgresql package)".to_string())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl Cluster {
    /// Creates and starts a new cluster of its own (initdb in a temporary
    /// directory, a free port); stopped and removed on drop.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin()?;
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("esg-testpg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        if as_postgres {
            chown_to_postgres(&dir)?;
        }
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        cluster.spawn_watchdog();
        let log = cluster.dir.join("initdb.log");
        let data = cluster.data();
        let out = cluster
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            let msg = format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::write(&log, &msg);
            cluster.stop_and_remove();
            return Err(msg);
        }
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_start() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = e,
            }
        }
        cluster.stop_and_remove();
        Err(last)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    fn pg_start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .map_err(|e| format!("pg_ctl start: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "pg_ctl start failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A fresh database on this cluster.
    pub fn fresh_db(&self) -> Result<TestDb, String> {
        create_database(&self.url("postgres"))
    }

    /// Stops the server (fast shutdown: sessions are terminated, as when an
    /// operator restarts the database); the data stays for [`Cluster::restart`].
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) -> Result<(), String> {
        self.pg_start()
    }

    /// A private cluster that accepts TLS connections only (`hostssl` in
    /// `pg_hba.conf`, plain TCP rejected), with a server certificate for
    /// `names` (DNS names or IP addresses) signed by a CA made for it.
    /// Returns the cluster and the CA's PEM file. Certificates are made with
    /// the `openssl` command (ECDSA P-256, valid two days).
    pub fn start_tls(names: &[&str]) -> Result<(Cluster, PathBuf), String> {
        let cluster = Cluster::start()?;
        cluster.stop();
        let tls = cluster.dir.join("tls");
        std::fs::create_dir_all(&tls).map_err(|e| format!("{}: {e}", tls.display()))?;
        let openssl = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("openssl (is it installed?): {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "openssl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=esg test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&ca)?;
        let mut csr = vec!["req", "-new", "-subj", "/CN=esg test server"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&csr)?;
        let san: Vec<String> = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(_) => format!("IP:{n}"),
                Err(_) => format!("DNS:{n}"),
            })
            .collect();
        std::fs::write(
            tls.join("server.ext"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .map_err(|e| e.to_string())?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ])?;
        let key = tls.join("server.key");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        if cluster.as_postgres {
            chown_to_postgres(&tls)?;
            chown_to_postgres(&key)?;
            chown_to_postgres(&tls.join("server.pem"))?;
        }
        let data = cluster.data();
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            tls.join("server.pem").display(),
            key.display()
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf"))
            .map_err(|e| format!("postgresql.conf: {e}"))?;
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).map_err(|e| e.to_string())?;
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .map_err(|e| format!("pg_hba.conf: {e}"))?;
        cluster.pg_start()?;
        Ok((cluster, tls.join("ca.pem")))
    }

    fn stop_and_remove(&self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A detached shell that stops the cluster and removes its directory
    /// once this process is gone, whatever killed it.
    fn spawn_watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let run_as = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -f '{data}/postmaster.pid' ]; then {run_as}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; fi; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            pg_ctl = pg_ctl.display(),
            dir = self.dir.display(),
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt;
        // Its own session: not killed with the test's process group.
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        // Reaped by nobody: the shell outlives us by design (init adopts it).
        let _ = cmd.spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_and_remove();
    }
}

fn chown_to_postgres(dir: &Path) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer into static storage or NULL; read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err("running as root, and there is no `postgres` user to run initdb as".into());
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: path is a valid C string.
    if unsafe { libc::chown(path.as_ptr(), uid, gid) } != 0 {
        return Err(format!(
            "chown {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// How long [`wait_until`] polls at most by default.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `f` every 50 ms until it returns `true` or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5/old?sslmode=disable", "new"),
            "postgres://u:p@h:5/new?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "n"), "postgres://h/n");
    }

    #[test]
    fn a_fresh_database_answers() {
        let Some(db) = fresh_db() else { return };
        assert_eq!(
            query_text(&db.url, "SELECT current_database()").unwrap(),
            Some(db.name.clone())
        );
    }
}
