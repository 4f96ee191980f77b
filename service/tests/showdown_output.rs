//! The showdown runs end to end on a tiny duration, does real work in every mode, and prints
//! well-formed JSON. Its speeds are a benchmark (see the README), not something a test
//! asserts; that work was done and nothing failed is.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
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

/// Runs the showdown with `args` and returns its JSON output; fails the test if it fails.
fn showdown(args: &[&str]) -> serde_json::Value {
    // `cargo test` builds every example before it runs a test, with the workspace's features;
    // run that binary directly. (`cargo run` from here would resolve features for this one
    // package and rebuild half the dependency tree inside the test's time budget.)
    let mut child = Command::new(showdown_binary())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let status = exit_within(&mut child, 4 * PATIENCE);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
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

#[test]
fn smoke() {
    let rows = showdown(&[
        "--duration",
        "0.3",
        "--clients",
        "2",
        "--threads",
        "2",
        "--json",
    ]);
    let rows = rows.as_array().unwrap();
    let modes: Vec<_> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["inline", "blocking", "offload"]);
    for row in rows {
        let number = |key: &str| number(row, key);
        // Real work: every mode answered, and no request failed (a 503 or a refused
        // connection counts as an error).
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
