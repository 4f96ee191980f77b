//! A real HTTP/1.1 client for the cache and fleet tests: requests go over a loopback socket to
//! `offload_service::serve`, as a client's would.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use offload_service_support::PATIENCE;

/// An answer, its body collected.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The value of header `name` as text; `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A pooled client for one server.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            addr,
        }
    }

    /// `POST path` with `body` and `headers`; fails the test after [`PATIENCE`].
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.send(Method::POST, path, body.into(), headers).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Bytes::new(), &[]).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).expect("a valid request");
        tokio::time::timeout(PATIENCE, async {
            let response = self
                .client
                .request(request)
                .await
                .expect("the server answers");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("the body arrives").to_bytes();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
        .await
        .expect("an answer within the test's patience")
    }
}
