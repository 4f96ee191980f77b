//! The real `offload-service` binary on a loopback port: SIGTERM while a request is in
//! flight. The binary logs JSON lines to stdout; the `listening` line gives its address.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

use offload_service_support::{Lines, PATIENCE, PHOTO, exit_within};

/// The binary with one pool thread on an ephemeral port, and its log.
fn start() -> (Child, Lines, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_offload-service"))
        .args(["--addr", "127.0.0.1:0", "--threads", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Lines::read(child.stdout.take().unwrap());
    let listening: serde_json::Value =
        serde_json::from_str(&log.next_matching(|l| l.contains(r#""message":"listening""#)))
            .unwrap();
    let addr = listening["addr"].as_str().unwrap().parse().unwrap();
    (child, log, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads until the end of a response head (`\r\n\r\n`).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed: {status}");
}

#[test]
fn smoke() {
    let (mut child, log, addr) = start();
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    sigterm(&child);
    let status = exit_within(&mut child, PATIENCE);
    assert_eq!(status.code(), Some(0), "{status}");
    log.next_matching(|l| l.contains(r#""message":"stopped""#));
}

#[test]
fn sigterm_stops_accepting_finishes_the_in_flight_request_and_exits_0() {
    let (mut child, log, addr) = start();
    let mut in_flight = connect(addr);
    // `expect: 100-continue`: the server answers `100 Continue` when the handler starts
    // reading the body, which proves the request is in flight before the signal.
    let head = format!(
        "POST /thumbnail?w=64&h=64 HTTP/1.1\r\nhost: test\r\ncontent-type: image/jpeg\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        PHOTO.len()
    );
    in_flight.write_all(head.as_bytes()).unwrap();
    let interim = read_head(&mut in_flight);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    sigterm(&child);
    log.next_matching(|l| l.contains(r#""message":"shutting down""#));
    // New connections are refused once the listener is gone (bounded polling).
    let deadline = std::time::Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }

    // The request started before the signal is still served, in full.
    in_flight.write_all(PHOTO).unwrap();
    let head = read_head(&mut in_flight);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/jpeg"),
        "{head}"
    );
    let mut body = Vec::new();
    in_flight.read_to_end(&mut body).unwrap();
    assert_eq!(&body[..2], &[0xFF, 0xD8], "a JPEG");

    let status = exit_within(&mut child, PATIENCE);
    assert_eq!(status.code(), Some(0), "{status}");
    log.next_matching(|l| l.contains(r#""message":"stopped""#));
}
