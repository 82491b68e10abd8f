//! The accept loop and the HTTP/1 connections: `ConnectInfo` for the rate
//! limit, hyper's header read timeout, and graceful shutdown.
//!
//! Shutdown reaches each connection through its own flag and waker
//! (a `Signal`), listed in a registry that is locked only when a connection
//! opens or closes. Polling a connection therefore costs one atomic load and
//! a waker registration per wake-up, not a lock on a channel shared by every
//! connection (what a `watch` receiver in a `select!` costs, on every poll
//! of every connection).

use axum::extract::ConnectInfo;
use futures_util::task::AtomicWaker;
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long a connection accepted as shutdown begins may take to send its
/// first request before it is closed.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// What one connection's task is told, and tells.
#[derive(Default)]
struct Signal {
    /// Set once, when shutdown begins.
    stopping: AtomicBool,
    /// Woken when `stopping` is set.
    waker: AtomicWaker,
    /// Set by the connection's first request.
    requested: AtomicBool,
}

impl Signal {
    /// `true` once shutdown began; otherwise `cx` is woken when it does.
    fn is_stopping(&self, cx: &Context<'_>) -> bool {
        // Register before reading the flag: a stop between the two still
        // wakes this task.
        self.waker.register(cx.waker());
        self.stopping.load(Ordering::Acquire)
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The live connections' signals.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    stopped: AtomicBool,
    live: Mutex<HashMap<u64, Arc<Signal>>>,
}

impl Registry {
    /// A new connection's signal (already stopping after [`Registry::stop_all`]),
    /// listed until the returned guard is dropped.
    fn register(self: &Arc<Self>) -> (Arc<Signal>, Registered) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal::default());
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, signal.clone());
        if self.stopped.load(Ordering::Acquire) {
            signal.stop();
        }
        (
            signal,
            Registered {
                registry: self.clone(),
                id,
            },
        )
    }

    fn stop_all(&self) {
        self.stopped.store(true, Ordering::Release);
        let live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for signal in live.values() {
            signal.stop();
        }
    }
}

/// Takes a connection off the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting, asks
/// every connection to close once its current request is answered, and
/// waits for them (the caller bounds that wait with the drain timeout).
///
/// The same as `axum::serve(..).with_graceful_shutdown(..)` with
/// `ConnectInfo<SocketAddr>` (for the rate limit), except that hyper's
/// HTTP/1 header read timeout is armed: a client that does not finish a
/// request head within `header_read_timeout` (or keeps a connection idle
/// that long) is disconnected, so slow-header clients cannot pin
/// connections open. `axum::serve` sets no timer, which leaves that timeout
/// off.
///
/// # Errors
/// None so far (accept errors are logged and retried); the `Result` keeps
/// the signature of a server.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    // `close` counts the live connections: each task holds a receiver.
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let spawn = |io: tokio::net::TcpStream, peer: SocketAddr| {
        let (signal, registered) = registry.register();
        let task = Connection {
            app: app.clone(),
            peer,
            header_read_timeout,
            signal,
        };
        let close = close_rx.clone();
        tokio::spawn(async move {
            let _close = close;
            let _registered = registered;
            task.serve(io).await;
        });
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((io, peer)) => spawn(io, peer),
                Err(e) => {
                    // EMFILE and the like are transient: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    // Connections the kernel already completed are served (a probe on one
    // sees /ready 503) rather than reset when the listener closes.
    while let Ok(Ok((io, peer))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        spawn(io, peer);
    }
    drop(listener);
    drop(close_rx);
    registry.stop_all();
    close_tx.closed().await;
    Ok(())
}

/// One accepted connection.
struct Connection {
    app: axum::Router,
    peer: SocketAddr,
    header_read_timeout: Duration,
    signal: Arc<Signal>,
}

impl Connection {
    async fn serve(self, io: tokio::net::TcpStream) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use tower::ServiceExt as _;
        let _ = io.set_nodelay(true);
        let Connection {
            app,
            peer,
            header_read_timeout,
            signal,
        } = self;
        let on_request = signal.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            on_request.requested.store(true, Ordering::Release);
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(io), svc);
        let mut conn = std::pin::pin!(conn);
        // The connection is polled first, so a request that arrived with it
        // is read (and answered) even when shutdown begins at that moment;
        // then keep-alive is turned off.
        let done = poll_fn(|cx| match conn.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending if signal.is_stopping(cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let r = match done {
            Some(r) => r,
            None => {
                // A connection accepted just as shutdown began may not have
                // sent its request yet: graceful shutdown would close it
                // unanswered. Give its first request a moment to arrive, so
                // that a probe on it is answered (`/ready` 503) and then
                // closed. Connections that already served a request go
                // straight on.
                let mut grace = std::pin::pin!(tokio::time::sleep(FIRST_REQUEST_GRACE));
                let first = poll_fn(|cx| match conn.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    Poll::Pending if signal.requested.load(Ordering::Acquire) => Poll::Ready(None),
                    Poll::Pending => grace.as_mut().poll(cx).map(|()| None),
                })
                .await;
                match first {
                    Some(r) => r,
                    None => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                }
            }
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "connection closed with an error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts its wakes.
    struct Count(AtomicU64);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stop_all_wakes_every_live_connection_and_later_ones_start_stopped() {
        let registry = Arc::new(Registry::default());
        let count = Arc::new(Count(AtomicU64::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let cx = Context::from_waker(&waker);
        let (a, reg_a) = registry.register();
        let (b, _reg_b) = registry.register();
        assert!(!a.is_stopping(&cx) && !b.is_stopping(&cx));
        drop(reg_a);
        assert_eq!(registry.live.lock().unwrap().len(), 1);
        registry.stop_all();
        // Only b was still listed: one wake, and b is stopping.
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(b.is_stopping(&cx));
        assert!(!a.is_stopping(&cx));
        let (c, _reg_c) = registry.register();
        assert!(c.is_stopping(&cx));
    }
}
