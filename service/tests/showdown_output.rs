//! The showdown runs end to end on a tiny duration, does real work in every mode, and prints
//! well-formed JSON. Its speeds are a benchmark (see the README), not something a test
//! asserts; that work was done and nothing failed is.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use offload_service_support::{PATIENCE, exit_within};

/// Reads a pipe to the end on its own thread, so a chatty child never blocks on it.
fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs the showdown with `args` (and `path` as its `PATH` if given): its exit status, stdout
/// and stderr.
fn run(args: &[&str], path: Option<&str>) -> (ExitStatus, String, String) {
    // `cargo test` builds every example before it runs a test, with the workspace's features;
    // run that binary directly. (`cargo run` from here would resolve features for this one
    // package and rebuild half the dependency tree inside the test's time budget.)
    let mut command = Command::new(showdown_binary());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let status = exit_within(&mut child, 4 * PATIENCE);
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

/// Runs the showdown with `args` and returns its JSON output; fails the test if it fails.
fn showdown(args: &[&str]) -> serde_json::Value {
    let (status, stdout, stderr) = run(args, None);
    assert!(
        status.success(),
        "showdown failed: {status}\n{stderr}\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// `row[key]` as a finite, non-negative number.
fn number(row: &serde_json::Value, key: &str) -> f64 {
    let v = row[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {row}"));
    assert!(v.is_finite() && v >= 0.0, "{key} = {v} in {row}");
    v
}

/// Runs the showdown's modes with `--clients 2 --threads 2 --json` and `args`: the modes of
/// its rows, in order, after checking every row did real work.
fn modes(args: &[&str]) -> Vec<String> {
    let args = [args, &["--clients", "2", "--threads", "2", "--json"]].concat();
    let rows = showdown(&args);
    let rows = rows.as_array().unwrap();
    rows.iter().for_each(assert_real_work);
    rows.iter()
        .map(|r| r["mode"].as_str().unwrap().to_owned())
        .collect()
}

/// Every request of `row` was answered, and `/healthz` too.
fn assert_real_work(row: &serde_json::Value) {
    let number = |key: &str| number(row, key);
    // Real work: the mode answered, and no request failed (a 503 or a refused connection
    // counts as an error).
    assert!(row["responses"].as_u64().unwrap() >= 1, "{row}");
    assert!(number("responses_per_s") > 0.0, "{row}");
    assert_eq!(row["errors"].as_u64(), Some(0), "{row}");
    // The prober answered, and its percentiles are ordered.
    assert!(row["healthz_samples"].as_u64().unwrap() >= 1, "{row}");
    let (p50, p99, max) = (
        number("healthz_p50_ms"),
        number("healthz_p99_ms"),
        number("healthz_max_ms"),
    );
    assert!(0.0 < max && p50 <= p99 && p99 <= max, "{row}");
    number("reactor_lag_p99_ms");
}

#[test]
fn smoke() {
    assert_eq!(
        modes(&["--duration", "0.3"]),
        ["inline", "blocking", "offload"]
    );
}

#[test]
fn fleet_runs_the_same_load_on_a_redis_fleet() {
    // The showdown starts its own Redis; this one only makes the test skip loudly where
    // redis-server is missing (and fail under CI=true), as every Redis test does.
    let Some(redis) = offload_test_redis::RedisServer::start() else {
        return;
    };
    drop(redis);
    assert_eq!(
        modes(&["--modes", "offload,fleet", "--duration", "1"]),
        ["offload", "fleet"]
    );
}

#[test]
fn fleet_without_redis_server_fails_with_what_to_do() {
    // A PATH with nothing on it: no redis-server to find.
    let (status, stdout, stderr) = run(
        &["--modes", "offload,fleet", "--duration", "1", "--json"],
        Some("/nonexistent/offload-showdown-test"),
    );
    assert!(!status.success(), "{stdout}");
    assert!(
        stderr.contains("fleet needs redis-server on the PATH"),
        "{stderr}"
    );
    // It fails before any mode runs: no rows.
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn overload_offers_multiples_of_capacity_and_accounts_for_every_arrival() {
    let report = showdown(&[
        "--overload",
        "--task",
        "mixed",
        "--duration",
        "0.5",
        "--clients",
        "2",
        "--threads",
        "2",
        "--loads",
        "1,3",
        // A debug build is slow: a deadline that lets the capacity run succeed.
        "--deadline-ms",
        "5000",
        "--json",
    ]);
    let capacity = number(&report, "capacity_per_s");
    assert!(capacity > 0.0, "{report}");
    assert_eq!(report["task"], "mixed");
    let rows = report["rows"].as_array().unwrap();
    let servers: Vec<_> = rows.iter().map(|r| r["server"].as_str().unwrap()).collect();
    assert_eq!(
        servers,
        [
            "inline",
            "inline",
            "blocking",
            "blocking",
            "offload-queue",
            "offload-queue",
            "offload-deadline",
            "offload-deadline"
        ]
    );
    for row in rows {
        let load = number(row, "load");
        assert!(load == 1.0 || load == 3.0, "{row}");
        let offered = number(row, "offered_per_s");
        assert!((offered - load * capacity).abs() < 1e-6 * offered, "{row}");
        // Every arrival has exactly one outcome.
        let outcomes: u64 = [
            "ok_in_time",
            "ok_late",
            "refused",
            "timed_out",
            "errors",
            "dropped",
        ]
        .iter()
        .map(|key| row[key].as_u64().unwrap())
        .sum();
        assert_eq!(outcomes, row["arrivals"].as_u64().unwrap(), "{row}");
        assert!(row["arrivals"].as_u64().unwrap() >= 1, "{row}");
        let goodput = number(row, "goodput_per_s");
        assert!(goodput <= offered * 1.5 + 1.0, "{row}");
        for key in ["ok_p99_ms", "refusal_p50_ms", "healthz_p99_ms"] {
            number(row, key);
        }
        if cfg!(target_os = "linux") {
            assert!(number(row, "peak_rss_mb") > 0.0, "{row}");
        }
    }
}

/// `target/<profile>/examples/showdown`, beside this test's own `deps/` folder.
fn showdown_binary() -> std::path::PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("showdown{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run this test through `cargo test`, which builds the examples",
        binary.display()
    );
    binary
}
