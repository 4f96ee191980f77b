//! The `offload-worker` binary serves the built-in tasks and stops cleanly on SIGTERM;
//! credentials travel in the URL.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use offload::Task;
use offload_redis::{ConnectError, Fleet};
use offload_tasks::ReportTask;
use offload_test_redis::RedisServer;

const CSV: &str = "date,category,region,description,quantity,unit_price\n\
                   2024-03-01,Books,EU,novel,2,9.99\n\
                   2024-03-02,Games,US,chess,1,20.00\n";

#[tokio::test]
async fn smoke() {
    let Some(redis) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        return;
    };
    let url = format!("redis://:s3cret@127.0.0.1:{}/", redis.port());
    let mut worker = Command::new(env!("CARGO_BIN_EXE_offload-worker"))
        .args(["--redis", &url, "--queue", "builtin", "--threads", "1"])
        .args(["--lease-ms", "500"])
        .stdin(Stdio::null())
        .spawn()
        .expect("offload-worker starts");
    let fleet = Fleet::connect(&url, "builtin").await.expect("connects");
    let remote = fleet
        .run(ReportTask::from_csv(CSV))
        .timeout(Duration::from_secs(20))
        .await
        .expect("the worker answers");
    let local = ReportTask::from_csv(CSV).run();
    assert_eq!(remote, local, "the same report as a local run");
    assert!(remote.is_ok());

    // SIGTERM: the worker finishes what it runs and exits successfully.
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .unwrap()
        .expect("waits");
    assert!(exited.success(), "{exited:?}");
}

#[tokio::test]
async fn a_wrong_password_is_a_connect_error() {
    let Some(redis) = RedisServer::start_with(&["--requirepass", "s3cret"]) else {
        return;
    };
    let url = format!("redis://:wrong@127.0.0.1:{}/", redis.port());
    let err = Fleet::connect(&url, "q").await.unwrap_err();
    assert!(matches!(err, ConnectError::Redis(_)), "{err:?}");
    let err = Fleet::connect("http://nope", "q").await.unwrap_err();
    assert!(matches!(err, ConnectError::Url(_)), "{err:?}");
}
