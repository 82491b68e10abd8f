//! Panics as log lines: a process-wide panic hook that writes one ERROR
//! event (a JSON line with the JSON log format) instead of Rust's default
//! message on stderr. The event is emitted on the panicking thread, inside
//! the request's span, so it carries that request's `request_id`,
//! `trace_id`, `span_id`, `method` and `path`. The 500 response itself is
//! made by [`crate::middleware::panic_response`], called where the panic is
//! caught (the guard layer; on the admin listener, tower-http's
//! `CatchPanicLayer`).

use std::sync::atomic::{AtomicBool, Ordering};

/// Log target (the `logger` field) of panic events.
pub const PANIC_LOG: &str = "esg_server::panic";

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Replaces the process's panic hook with one that logs an ERROR event
/// (`error_type = "panic"`, the panic message and its source location).
/// Idempotent.
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            target: PANIC_LOG,
            error_type = "panic",
            panic = %message,
            location = %location,
            thread = thread.name().unwrap_or("unnamed"),
            "panicked"
        );
    }));
}

/// `true` once [`install`] has run: the panic was already logged with its
/// message, so callers that turn it into a 500 need not log it again.
pub fn hook_installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
}
