//! Bounded extraction: each document is parsed in a child process with a
//! wall-clock timeout, an address-space limit and a CPU-time limit.
//!
//! The child is the `esg` binary itself, started with a hidden subcommand
//! that calls [`worker_main`]: it reads the document's bytes on stdin and
//! writes one JSON result on stdout. The parent hashes the same bytes it
//! pipes in, so what is stored is exactly what was extracted.

use crate::error::{ErrorCode, IngestError};
use esg_core::{MediaType, RawPage};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What extraction produced for one document, before clean-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extracted {
    /// Detected format.
    pub media_type: MediaType,
    /// Raw pages, numbered from 1.
    pub pages: Vec<RawPage>,
    /// Non-fatal problems (e.g. one unreadable page).
    pub warnings: Vec<String>,
}

/// Detects the format and extracts text in this process.
///
/// A panic in a parser is caught and returned as
/// [`ErrorCode::ExtractionFailed`]. There is no time or memory bound here:
/// use a [`Sandbox`] for untrusted input.
pub fn extract_in_process(bytes: &[u8]) -> Result<Extracted, IngestError> {
    extract_in_process_with(bytes, 0)
}

/// [`extract_in_process`] reading a PDF's pages with at most `threads`
/// threads (0: one per core; see [`crate::pdf::extract_pdf_with`]).
pub fn extract_in_process_with(bytes: &[u8], threads: usize) -> Result<Extracted, IngestError> {
    let media_type = crate::detect(bytes)?;
    let run = || -> Result<Extracted, IngestError> {
        let (pages, warnings) = match media_type {
            MediaType::Pdf => {
                let t = crate::pdf::extract_pdf_with(bytes, threads)?;
                (t.pages, t.warnings)
            }
            MediaType::Html => (crate::html::extract_html(bytes)?, Vec::new()),
            MediaType::Text => (crate::text::extract_text(bytes)?, Vec::new()),
        };
        Ok(Extracted {
            media_type,
            pages,
            warnings,
        })
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(IngestError::new(
                ErrorCode::ExtractionFailed,
                format!(
                    "the {} parser failed on this file: {msg}",
                    media_type.short()
                ),
            ))
        }
    }
}

/// Environment variable by which [`Sandbox::extract`] tells the worker how
/// many threads may read a PDF's pages (unset or 0: one per core).
pub const THREADS_ENV: &str = "ESG_EXTRACT_THREADS";

/// The child's side: read stdin, extract, print the JSON result, return the exit code.
pub fn worker_main() -> i32 {
    // Panics are caught and reported as JSON; keep stderr quiet about them.
    std::panic::set_hook(Box::new(|_| {}));
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut bytes) {
        eprintln!("cannot read input: {e}");
        return 3;
    }
    let threads = std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let result: Result<Extracted, IngestError> = extract_in_process_with(&bytes, threads);
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer(&mut out, &result) {
        Ok(()) => {
            let _ = out.flush();
            0
        }
        Err(e) => {
            eprintln!("cannot write result: {e}");
            3
        }
    }
}

/// Runs extraction in a bounded child process.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The program to run (normally the `esg` binary).
    pub program: PathBuf,
    /// Arguments that make `program` call [`worker_main`].
    pub args: Vec<OsString>,
    /// Wall-clock limit per document.
    pub timeout: Duration,
    /// Address-space limit of the child, in bytes.
    pub memory_limit: u64,
    /// Threads the worker may use to read a PDF's pages (0: one per core).
    /// The CPU-time limit is per process, so it is raised with them.
    pub threads: usize,
}

/// Default wall-clock limit per document.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default address-space limit per document (2 GiB).
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

impl Sandbox {
    /// A sandbox that runs `program args...` as the worker, with default limits.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        Sandbox {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            threads: 0,
        }
    }

    /// Extracts `bytes` in a child process within the limits.
    pub fn extract(&self, bytes: &[u8]) -> Result<Extracted, IngestError> {
        let mem = self.memory_limit;
        let threads = match self.threads {
            0 => crate::pdf::default_threads(),
            n => n,
        };
        // CPU time is summed over the worker's threads; the wall-clock
        // timeout stays the bound on how long a document may take.
        let cpu = (self.timeout.as_secs() + 2) * threads.max(1) as u64;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env(THREADS_ENV, threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Own process group, so a timeout kills the worker and anything it started.
        cmd.process_group(0);
        // SAFETY: getpid is a plain syscall.
        let parent = unsafe { libc::getpid() };
        // SAFETY: setrlimit, prctl and getppid are async-signal-safe system
        // calls, and nothing here allocates; nothing else runs between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || {
                // The worker dies with the thread that started it (which
                // waits for it below): a server or `esg ingest` that exits
                // or is killed does not leave an orphan extracting until its
                // CPU limit. If the parent is already gone, do not start.
                #[cfg(target_os = "linux")]
                {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                }
                #[cfg(not(target_os = "linux"))]
                let _ = parent;
                let set = |res, v: u64| {
                    let lim = libc::rlimit {
                        rlim_cur: v as libc::rlim_t,
                        rlim_max: v as libc::rlim_t,
                    };
                    if libc::setrlimit(res, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                set(libc::RLIMIT_AS, mem)?;
                set(libc::RLIMIT_CPU, cpu)?;
                set(libc::RLIMIT_CORE, 0)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            IngestError::new(
                ErrorCode::ExtractionFailed,
                format!(
                    "cannot start the extraction worker {}: {e}",
                    self.program.display()
                ),
            )
        })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (outcome, out, err) = std::thread::scope(|s| {
            s.spawn(move || {
                // A worker that dies early closes the pipe: ignore EPIPE.
                let _ = stdin.write_all(bytes);
            });
            let out = s.spawn(move || {
                let mut v = Vec::new();
                let _ = stdout.read_to_end(&mut v);
                v
            });
            let err = s.spawn(move || {
                let mut v = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut v);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                v
            });
            // Wait for the worker in a thread of its own, so its end is seen
            // at once (polling with sleeps added up to 20 ms to every
            // document); the timeout kills its process group by id.
            let pid = child.id() as libc::pid_t;
            let (tx, rx) = std::sync::mpsc::channel();
            s.spawn(move || {
                let _ = tx.send(child.wait());
            });
            let mut timed_out = false;
            let status = match rx.recv_timeout(self.timeout) {
                Ok(st) => st,
                Err(_) => {
                    timed_out = true;
                    // SAFETY: plain syscall; the group id is the child's pid
                    // (process_group(0)). The child is reaped only by the
                    // waiting thread, an instant before it reports, so the
                    // id is not yet anyone else's.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    rx.recv().unwrap_or_else(|_| {
                        Err(std::io::Error::other(
                            "the thread waiting for the worker died",
                        ))
                    })
                }
            };
            (
                status.map(|st| (st, timed_out)),
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default(),
            )
        });
        let (status, timed_out) = outcome.map_err(|e| {
            IngestError::new(
                ErrorCode::ExtractionFailed,
                format!("lost the extraction worker: {e}"),
            )
        })?;
        let stderr_text = String::from_utf8_lossy(&err);
        if timed_out || status.signal() == Some(libc::SIGXCPU) {
            return Err(IngestError::new(
                ErrorCode::ExtractionTimeout,
                format!(
                    "extraction took longer than {} s and was stopped",
                    self.timeout.as_secs()
                ),
            ));
        }
        if status.success() {
            return serde_json::from_slice::<Result<Extracted, IngestError>>(&out).unwrap_or_else(
                |e| {
                    Err(IngestError::new(
                        ErrorCode::ExtractionFailed,
                        format!("the extraction worker's output was unreadable: {e}"),
                    ))
                },
            );
        }
        if stderr_text.contains("memory allocation")
            || stderr_text.contains("capacity overflow")
            || status.signal() == Some(libc::SIGKILL)
        {
            return Err(IngestError::new(
                ErrorCode::ExtractionMemoryLimit,
                format!(
                    "extraction needed more than {} MiB of memory and was stopped",
                    self.memory_limit >> 20
                ),
            ));
        }
        let detail = stderr_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        let how = match status.signal() {
            Some(sig) => format!("was killed by signal {sig}"),
            None => format!("exited with status {}", status.code().unwrap_or(-1)),
        };
        Err(IngestError::new(
            ErrorCode::ExtractionFailed,
            format!(
                "the extraction worker {how}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
        ))
    }
}
