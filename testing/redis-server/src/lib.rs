//! A throwaway `redis-server` for tests: started on a free loopback port in a temporary
//! folder, stopped, restarted on the same port and data, paused, and always killed and
//! cleaned up when dropped.
//!
//! Where `redis-server` is not installed, [`RedisServer::start`] says so loudly on stderr and
//! returns `None`, so the test can return early (skip); under `CI=true` it panics instead, so
//! a CI machine without Redis fails the run rather than skipping the tests silently.
//!
//! ```no_run
//! let Some(redis) = offload_test_redis::RedisServer::start() else { return };
//! let url = redis.url(); // redis://127.0.0.1:<port>/
//! # drop(url);
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer `PING` after starting.
const STARTUP: Duration = Duration::from_secs(20);

/// A `redis-server` process this test owns. Killed (and its folder removed) on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Extra `redis-server` arguments, kept for restarts.
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server with an append-only file (`appendfsync always`, so a restart keeps
    /// every acknowledged write) and `maxmemory-policy noeviction`: the settings the fleet
    /// documents. `None` when `redis-server` is missing outside CI (see the crate docs).
    ///
    /// # Panics
    ///
    /// If the server does not start, or is missing under `CI=true`.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// [`start`](RedisServer::start) with more `redis-server` arguments, such as
    /// `["--requirepass", "secret"]`.
    ///
    /// # Panics
    ///
    /// As [`start`](RedisServer::start).
    pub fn start_with(args: &[&str]) -> Option<RedisServer> {
        if !installed() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "redis-server is not installed, and CI=true: .ci/run installs Debian's package"
            );
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed (apt-get install redis-server); \
                 this Redis test did not run ***\n"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("offload-redis-")
            .tempdir()
            .expect("a temporary folder");
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir,
            args: args.iter().map(|&a| a.to_owned()).collect(),
        };
        server.spawn();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The loopback port the server listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working folder (its AOF and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL: no last save; the AOF has every acknowledged write) and
    /// waits for it to exit. Connections to it fail from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data (after [`stop`](Self::stop)).
    ///
    /// # Panics
    ///
    /// If it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Sends one command in Redis's inline form (`"DBSIZE"`) and returns the first line of
    /// the reply, for tests that look at the server behind the client's back.
    ///
    /// # Panics
    ///
    /// If the server does not answer.
    pub fn command(&self, line: &str) -> String {
        let mut stream = connect(self.port).expect("the test redis-server answers");
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write to redis");
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .expect("read from redis");
        reply.trim_end().to_owned()
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::File::create(dir.join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", dir.to_str().expect("utf-8 temp path")])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args([
                "--maxmemory-policy",
                "noeviction",
                "--protected-mode",
                "yes",
            ])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while !self.answers() {
            assert!(
                started.elapsed() < STARTUP,
                "redis-server did not answer PING within {STARTUP:?}; its log:\n{}",
                std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers `PING` (`+PONG`, or `-NOAUTH` when it has a password).
    fn answers(&self) -> bool {
        let Ok(mut stream) = connect(self.port) else {
            return false;
        };
        let mut reply = [0u8; 5];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG" || &reply == b"-NOAU")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

/// A port the OS has just handed out (and taken back): free unless another process grabs it
/// in the moment before the server binds it.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether `redis-server` is on the PATH.
pub fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_stops_and_restarts_with_its_data() {
        let Some(mut redis) = RedisServer::start() else {
            return;
        };
        assert_eq!(redis.command("SET k v"), "+OK");
        redis.stop();
        assert!(!redis.answers());
        redis.restart();
        // The append-only file kept the write.
        assert_eq!(redis.command("GET k"), "$1");
        let dir = redis.dir().to_owned();
        drop(redis);
        assert!(!dir.exists(), "the folder is removed");
    }
}
