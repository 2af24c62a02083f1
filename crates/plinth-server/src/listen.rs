//! Accepting connections so that slow or idle clients cannot exhaust the
//! server: a cap on open connections (a 503 with `Retry-After` beyond it),
//! a header-read timeout (slowloris), an idle timeout, and a graceful
//! drain on shutdown.
//!
//! - The header-read timeout is hyper's: it runs from the moment the server
//!   waits for a request, on a new connection and between keep-alive
//!   requests, so an HTTP/1.1 connection that sends nothing, or half a
//!   header, is closed after it.
//! - The idle timeout closes a connection (HTTP/2 included) that has had no
//!   request in flight for that long; a long request or a streaming
//!   response (server-sent events) is never cut by it.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// How many connections may be open and how long a client may dawdle.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections across all listeners; one more is answered 503.
    pub max_connections: usize,
    /// Longest wait for a complete request header (and, on a keep-alive
    /// connection, for the next request to arrive).
    pub header_read_timeout: Duration,
    /// Longest time a connection stays open with no request in flight.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
}

/// Most 503 answers being written at once; beyond, refused sockets are
/// closed without an answer.
const MAX_REJECTING: usize = 256;
/// How long a refused socket gets to take its 503.
const REJECT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long shutdown waits for open requests to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on every listener until `stopped` turns true, then drains.
pub(crate) async fn serve(
    listeners: Vec<tokio::net::TcpListener>,
    app: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    let mut loops = Vec::new();
    for listener in listeners {
        let accept = Accept {
            app: app.clone(),
            limits,
            stats: stats.clone(),
            open: open.clone(),
            rejecting: rejecting.clone(),
            graceful: graceful.clone(),
            builder: builder.clone(),
        };
        loops.push(tokio::spawn(accept.run(listener, stopped.clone())));
    }
    for accept in loops {
        accept.await.map_err(std::io::Error::other)?;
    }
    match Arc::try_unwrap(graceful) {
        Ok(graceful) => {
            if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
                tracing::info!("connections still open after {}s; closing them", DRAIN_TIMEOUT.as_secs());
            }
        }
        Err(_) => tracing::warn!("connection tracker still shared at shutdown"),
    }
    Ok(())
}

struct Accept {
    app: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    open: Arc<Semaphore>,
    rejecting: Arc<Semaphore>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Accept {
    async fn run(self, listener: tokio::net::TcpListener, mut stopped: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.open.clone().try_acquire_owned() {
                Ok(permit) => {
                    self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    self.serve_connection(stream, peer, permit);
                }
                Err(_) => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    if let Ok(permit) = self.rejecting.clone().try_acquire_owned() {
                        let max = self.limits.max_connections;
                        tokio::spawn(async move {
                            let _permit = permit;
                            let _ = tokio::time::timeout(REJECT_WRITE_TIMEOUT, reject(stream, max)).await;
                        });
                    }
                }
            }
        }
    }

    fn serve_connection(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(Activity::new());
        let app = self.app.clone();
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let guard = tracked.start();
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(Body::new)).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Tracked { body, _guard: guard })))
            }
        });
        let connection = self.builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = self.graceful.watch(connection);
        let stats = self.stats.clone();
        let idle_timeout = self.limits.idle_timeout;
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended");
                    }
                }
                _ = activity.idle_for(idle_timeout) => {
                    tracing::debug!(%peer, "closing an idle connection");
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Answers a connection over the cap: 503 with `Retry-After`, in
/// Backstage's error shape, then closes it.
async fn reject(mut stream: tokio::net::TcpStream, max: usize) {
    let body = format!(
        "{{\"error\":{{\"name\":\"ServiceUnavailableError\",\"message\":\"the server has {max} connections open, its limit; retry in a moment\"}},\"response\":{{\"statusCode\":503}}}}"
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `started` of the last request start or end.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { started: Instant::now(), in_flight: AtomicUsize::new(0), last: AtomicU64::new(0) }
    }

    fn touch(&self) {
        self.last.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = self.started.elapsed().saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)));
            if self.in_flight.load(Ordering::Relaxed) == 0 && since >= timeout {
                return;
            }
            let wait = if self.in_flight.load(Ordering::Relaxed) > 0 { timeout } else { timeout - since };
            tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
        }
    }
}

/// A request in flight until its response body is sent or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
