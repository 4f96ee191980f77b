//! An axum service that sends CPU-heavy work (image thumbnails, report aggregation, PDF
//! reports) to an [`offload`] pool: the subject of the showdown, and a template for a real one.
//!
//! ```text
//! cargo run --release -p offload-service -- --mode offload --addr 127.0.0.1:3000
//! curl --data-binary @photo.jpg 'http://127.0.0.1:3000/thumbnail?w=256&h=256' -o thumb.jpg
//! curl --data-binary @rows.csv 'http://127.0.0.1:3000/report?period=week'
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! | route | what it does |
//! |---|---|
//! | `POST /thumbnail?w=&h=&fit=&format=&q=` | a thumbnail of the posted image (JPEG, PNG, WebP or GIF in) |
//! | `POST /report?period=&top=` | a JSON report of the posted CSV rows (JSON rows with `content-type: application/json`) |
//! | `POST /report.pdf?period=&top=` | the same report as a PDF |
//! | `GET /healthz` | `ok`, answered on the reactor: its latency is the showdown's probe |
//! | `GET /metrics` | the Prometheus text format: the pool's, the cache's and the HTTP series |
//!
//! A bad query string is a 400 naming the parameter; an oversized body a 413 (at once when
//! `Content-Length` declares it); a body sent too slowly a 408; an image or report that does
//! not parse a 415 or 422; a task the pool refuses (full, or unable to finish by the request's
//! deadline) a 503 with a jittered `Retry-After` from the pool's prediction, decided from the
//! request's head before the upload is read (so an `Expect: 100-continue` client never sends
//! it; `--drain-refused-kb`, `--queue-mb`); a request past
//! its deadline (`--request-timeout-ms`, shortened by an `x-request-timeout-ms` header) a 504;
//! a server shutting down a `503 shutting down` with `connection: close`; a panicking task a
//! bare 500. No answer carries internals.
//!
//! With `--cache-mb N` (0: off), identical requests to the three task routes run once while
//! their result lives (`--cache-ttl-ms`; shared by replicas through `--cache-redis`): the
//! answers carry `x-cache: hit|miss|coalesced`, an `ETag` (the result's content key) and
//! `Cache-Control`, and an `If-None-Match` with the key is a 304 that runs nothing. With
//! `--redis URL`, the tasks run on a fleet of `offload-worker` processes
//! (`offload_redis::Fleet`, queue `--redis-queue`) instead of the local pool, with the same
//! status codes (an unreachable Redis is a 503 with `Retry-After`).
//!
//! Connections that do not send a request head within `--header-timeout-ms` (also the idle
//! timeout between requests) are closed; beyond `--max-connections` a new connection gets a
//! 503 and is closed; after SIGTERM, `--shutdown-timeout-ms` bounds the wait for in-flight
//! work.
//!
//! [`app`] builds the router from an [`AppState`], so tests drive it without a socket, and
//! [`serve`] runs it on a listener until a shutdown signal, finishing in-flight requests.

mod app;
mod backend;
mod cache;
mod config;
mod error;
mod extract;
mod guard;
mod prometheus;
mod report;
mod state;
mod thumbnail;
mod trace;

pub use app::{app, serve};
pub use config::{Cli, Config, Mode};
pub use error::AppError;
pub use extract::Query;
pub use guard::{Deadline, REQUEST_TIMEOUT_HEADER};
pub use state::{AppState, StartError};
pub use trace::log_subscriber;
