//! The showdown runs end to end on a tiny duration and prints well-formed JSON. Its numbers
//! are a benchmark (see the README), not something a test asserts.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn smoke() {
    // `cargo test` builds the examples first, so this `cargo run` only runs the binary.
    let output = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "showdown", "--"])
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
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "showdown failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let modes: Vec<_> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["inline", "blocking", "offload"]);
    for row in rows {
        for key in [
            "thumbnails_per_s",
            "healthz_p50_ms",
            "healthz_p99_ms",
            "healthz_max_ms",
            "reactor_lag_p99_ms",
        ] {
            let v = row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} in {row}"));
            assert!(v.is_finite() && v >= 0.0, "{key} = {v}");
        }
        assert!(row["errors"].is_u64(), "{row}");
        assert!(row["healthz_p50_ms"].as_f64() <= row["healthz_p99_ms"].as_f64());
        assert!(row["healthz_p99_ms"].as_f64() <= row["healthz_max_ms"].as_f64());
    }
}
