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

#[test]
fn smoke() {
    // `cargo test` builds every example before it runs a test, with the workspace's features;
    // run that binary directly. (`cargo run` from here would resolve features for this one
    // package and rebuild half the dependency tree inside the test's time budget.)
    let mut child = Command::new(showdown_binary())
        .args([
            "--duration",
            "0.3",
            "--clients",
            "2",
            "--threads",
            "2",
            "--json",
        ])
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

    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let modes: Vec<_> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["inline", "blocking", "offload"]);
    for row in rows {
        let number = |key: &str| -> f64 {
            let v = row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} in {row}"));
            assert!(v.is_finite() && v >= 0.0, "{key} = {v} in {row}");
            v
        };
        // Real work: every mode made thumbnails, and no request failed (a 503 or a refused
        // connection counts as an error).
        assert!(row["thumbnails"].as_u64().unwrap() >= 1, "{row}");
        assert!(number("thumbnails_per_s") > 0.0, "{row}");
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
