//! A batching log writer: request threads append whole lines to a shared
//! buffer, and one background thread writes what has gathered with a single
//! `write(2)` every [`BATCH_WINDOW`] at most.
//!
//! Writing each line straight to stdout cost two system calls per request
//! (received and sent), which was the largest part of the logging cost under
//! load (`bench/http_cpu.sh`). Here a request only copies its line under a
//! mutex; it wakes the writer thread only when that thread is idle.
//!
//! Nothing is dropped for lack of room: when [`MAX_BUFFERED`] bytes are
//! waiting (stdout blocked by a slow reader), writers wait for room. A
//! write that fails (stdout closed, disk full) drops that batch, and
//! logging goes on: there is nowhere to report it. ERROR lines are written
//! before the call returns ([`BatchWriter::flush`]), so the line of a failure
//! is on stdout even if the process dies right after. Buffered lines are lost
//! only if the process is killed (SIGKILL, abort) within the batch window;
//! `esg serve` flushes on every normal exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread lets lines gather after it wakes.
pub const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// Bytes that may wait for the writer before loggers wait for room.
pub const MAX_BUFFERED: usize = 8 << 20;

#[derive(Default)]
struct State {
    /// Lines waiting for the writer thread.
    buf: Vec<u8>,
    /// The writer thread is parked waiting for lines.
    idle: bool,
    /// A batch taken from `buf` is being written.
    writing: bool,
    /// No more lines: the writer thread writes what is left and ends.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer thread.
    lines: Condvar,
    /// Wakes loggers waiting for room or for a flush.
    written: Condvar,
    /// Where lines go: written by the thread, and directly after close.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the buffer half-made
        // (appends are single `extend_from_slice` calls): keep logging.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the writer thread to finish a batch (or make room).
    fn wait_written<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.written.wait(st).unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` to the output. Nowhere to report a failed write to
    /// stdout: the lines are dropped and logging goes on.
    fn write_out(&self, bytes: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
}

/// The handle loggers write through; cheap to clone. Dropping the last
/// handle does not stop the thread: call [`BatchWriter::close`].
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

impl BatchWriter {
    /// Starts the writer thread, writing batches to `out`.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> std::io::Result<BatchWriter> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            lines: Condvar::new(),
            written: Condvar::new(),
            out: Mutex::new(Box::new(out)),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("esg-log-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let mut st = s.lock();
                    while st.buf.is_empty() && !st.closed {
                        st.idle = true;
                        st = s.lines.wait(st).unwrap_or_else(|p| p.into_inner());
                    }
                    st.idle = false;
                    if st.buf.is_empty() && st.closed {
                        return;
                    }
                    if !st.closed {
                        // Let more lines gather: one write for many lines.
                        drop(st);
                        std::thread::sleep(BATCH_WINDOW);
                        st = s.lock();
                    }
                    std::mem::swap(&mut st.buf, &mut batch);
                    st.writing = true;
                    drop(st);
                    s.write_out(&batch);
                    batch.clear();
                    if batch.capacity() > MAX_BUFFERED {
                        batch = Vec::new();
                    }
                    s.lock().writing = false;
                    s.written.notify_all();
                }
            })?;
        Ok(BatchWriter {
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Appends one or more whole lines.
    pub fn append(&self, line: &[u8]) {
        let mut st = self.shared.lock();
        while st.buf.len() >= MAX_BUFFERED && !st.closed {
            st = self.shared.wait_written(st);
        }
        if st.closed {
            // After close (process exit): write through, after the last
            // batch the thread is still writing, if any.
            while !st.buf.is_empty() || st.writing {
                st = self.shared.wait_written(st);
            }
            drop(st);
            self.shared.write_out(line);
            return;
        }
        st.buf.extend_from_slice(line);
        if st.idle {
            st.idle = false;
            drop(st);
            self.shared.lines.notify_one();
        }
    }

    /// Waits until every line appended so far has been written.
    pub fn flush(&self) {
        let mut st = self.shared.lock();
        if st.idle && !st.buf.is_empty() {
            st.idle = false;
            self.shared.lines.notify_one();
        }
        while !st.buf.is_empty() || st.writing {
            st = self.shared.wait_written(st);
        }
    }

    /// Writes what is buffered and stops the thread. Lines appended later
    /// are written directly to the output.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.lines.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        self.shared.written.notify_all();
    }
}

/// One event's writer: [`Write`] appends to the batch.
#[derive(Debug)]
pub struct LineWriter<'a> {
    to: &'a BatchWriter,
    level: Option<tracing::Level>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to.append(buf);
        if self.level == Some(tracing::Level::ERROR) {
            self.to.flush();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            to: self,
            level: None,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            to: self,
            level: Some(*meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records each write call.
    #[derive(Clone, Default)]
    struct Calls(Arc<Mutex<Vec<Vec<u8>>>>);
    impl Write for Calls {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_in_order_and_batched() {
        let out = Calls::default();
        let w = BatchWriter::spawn(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        w.make_writer()
                            .write_all(format!("{{\"t\":{t},\"i\":{i}}}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        w.flush();
        let calls = out.0.lock().unwrap().clone();
        let text: Vec<u8> = calls.concat();
        let text = String::from_utf8(text).unwrap();
        let mut next = [0u64; 4];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let t = v["t"].as_u64().unwrap() as usize;
            assert_eq!(v["i"].as_u64().unwrap(), next[t], "per-thread order");
            next[t] += 1;
        }
        assert_eq!(next, [2_000; 4], "no line lost");
        assert!(
            calls.len() < 8_000,
            "lines were batched: {} writes for 8000 lines",
            calls.len()
        );
        w.close();
    }

    #[test]
    fn flush_waits_for_the_write_and_close_drains() {
        let out = Calls::default();
        let w = BatchWriter::spawn(out.clone()).unwrap();
        w.append(b"one\n");
        w.flush();
        assert_eq!(out.0.lock().unwrap().concat(), b"one\n");
        w.append(b"two\n");
        w.close();
        assert_eq!(out.0.lock().unwrap().concat(), b"one\ntwo\n");
        // Closing twice is harmless; later lines go straight to the output.
        w.close();
        w.append(b"three\n");
        assert_eq!(out.0.lock().unwrap().concat(), b"one\ntwo\nthree\n");
    }

    #[test]
    fn an_error_line_is_written_before_the_call_returns() {
        let out = Calls::default();
        let w = BatchWriter::spawn(out.clone()).unwrap();
        let sub = tracing_subscriber::fmt()
            .with_writer(w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!("info line");
            tracing::error!("error line");
        });
        let text = String::from_utf8(out.0.lock().unwrap().concat()).unwrap();
        assert!(
            text.contains("info line") && text.contains("error line"),
            "{text}"
        );
        w.close();
    }
}
