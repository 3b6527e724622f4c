//! The HTTP side of the exporter: a listener bound by the caller (so tests bind port 0 and a
//! busy port is reported before any work starts) and a warp server answering `GET /metrics` in
//! the Prometheus text format until its shutdown token is cancelled.

use std::net::SocketAddr;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::http::{header, Response, StatusCode};
use warp::Filter;

use super::MetricsError;

/// Binds `addr`; a taken port or a foreign address is a [`MetricsError::Bind`] with a hint.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another process listens there: choose a port with --metrics-port or METRICS_PORT)"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                " (no local interface has that address: check --metrics-host)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            _ => "",
        };
        MetricsError::Bind { addr, source, hint }
    })
}

/// The current contents of `registry` in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec fails only on families that break the format's own rules, which
    // registration already refused.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        log::warn!("encoding metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `/metrics` (and a pointer to it on `/`) on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, registry: Registry, shutdown: CancellationToken) {
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            Response::builder()
                .header(header::CONTENT_TYPE, TextEncoder::new().format_type())
                .body(render(&registry))
                .unwrap_or_default()
        });
    let index = warp::path::end().and(warp::get()).map(|| {
        Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(
                "<html><body><h1>pgvector-loadtest exporter</h1>\
                 <p><a href=\"/metrics\">/metrics</a></p></body></html>"
                    .to_string(),
            )
            .unwrap_or_default()
    });
    let not_found = warp::any().map(|| {
        Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("not found: the exporter serves /metrics\n".to_string())
            .unwrap_or_default()
    });
    // hyper ends the server on the first error its incoming stream yields; a failed accept
    // (e.g. out of file descriptors) is transient, so it is retried here instead.
    let incoming = futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => return Some((Ok::<_, std::io::Error>(stream), listener)),
                Err(e) => {
                    log::warn!("metrics exporter: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    let stop = shutdown.clone();
    warp::serve(metrics.or(index).or(not_found))
        .serve_incoming_with_graceful_shutdown(incoming, async move { stop.cancelled().await })
        .await;
}
