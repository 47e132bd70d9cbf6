//! The HTTP server loop: the router on hyper, with the time limits that
//! `axum::serve` does not set. A client that opens a connection and sends
//! its headers slowly (slowloris) is cut after `header_read`; a request
//! whose body crawls or whose handler hangs is answered 408 after
//! `request`. On cancel the listener closes and in-flight requests finish.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// `http.header_read_timeout` and `http.request_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// From the connection's first byte (or the end of the previous request
    /// on a kept-alive connection) to the end of the request's headers.
    pub header_read: Duration,
    /// The whole request: body read and handler, 408 past it.
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// Serve `router` on `listener` until `cancel`, then let in-flight
/// requests finish.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    timeouts: HttpTimeouts,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        timeouts.request,
    ));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = cancel.cancelled() => break,
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                // Peer addresses key the per-client rate limit.
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            });
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.header_read);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
