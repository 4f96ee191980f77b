//! The overload scenario's `--expect-continue` client: HTTP/1.1 over kept-alive loopback
//! connections, sending `Expect: 100-continue` and the body only once the server asks for it
//! with `100 Continue`, as curl does for large uploads. hyper's client sends the body at once
//! whatever the header says, so a server that refuses from the head still receives it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use hyper::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::REQUEST_TIMEOUT_HEADER;

/// A pool of kept-alive connections to one server.
#[derive(Clone, Debug)]
pub(crate) struct ExpectClient {
    addr: SocketAddr,
    idle: Arc<Mutex<Vec<BufReader<TcpStream>>>>,
}

/// An answer's head: its status, its body's length, and whether the connection closes.
struct Head {
    status: StatusCode,
    length: usize,
    close: bool,
}

impl ExpectClient {
    pub(crate) fn new(addr: SocketAddr) -> ExpectClient {
        ExpectClient {
            addr,
            idle: Arc::default(),
        }
    }

    /// `POST path` with `body`, sending the body only after `100 Continue`; the final
    /// answer's status (its body read and dropped). A connection whose body was never asked
    /// for is closed (the server cannot know whether it would follow), as curl does.
    pub(crate) async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &Bytes,
        deadline: Option<Duration>,
    ) -> anyhow::Result<StatusCode> {
        let idle = self.idle.lock().expect("idle lock").pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => BufReader::new(TcpStream::connect(self.addr).await?),
        };
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\n\
             content-length: {}\r\nexpect: 100-continue\r\n",
            self.addr,
            body.len()
        );
        if let Some(deadline) = deadline {
            head.push_str(&format!(
                "{REQUEST_TIMEOUT_HEADER}: {}\r\n",
                deadline.as_millis()
            ));
        }
        head.push_str("\r\n");
        conn.get_mut().write_all(head.as_bytes()).await?;
        let mut answer = read_head(&mut conn).await?;
        let sent = answer.status == StatusCode::CONTINUE;
        if sent {
            conn.get_mut().write_all(body).await?;
            answer = read_head(&mut conn).await?;
        }
        let mut rest = vec![0; answer.length];
        conn.read_exact(&mut rest).await?;
        if sent && !answer.close {
            self.idle.lock().expect("idle lock").push(conn);
        }
        Ok(answer.status)
    }
}

/// Reads an answer's head: the status line and the headers up to the empty line.
async fn read_head(conn: &mut BufReader<TcpStream>) -> anyhow::Result<Head> {
    let mut line = String::new();
    anyhow::ensure!(conn.read_line(&mut line).await? > 0, "connection closed");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut head = Head {
        status,
        length: 0,
        close: false,
    };
    loop {
        line.clear();
        anyhow::ensure!(conn.read_line(&mut line).await? > 0, "connection closed");
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            return Ok(head);
        }
        if let Some(length) = header.strip_prefix("content-length:") {
            head.length = length.trim().parse()?;
        } else if header.starts_with("connection:") && header.contains("close") {
            head.close = true;
        }
    }
}
