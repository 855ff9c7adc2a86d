//! The ground truth: one NDJSON line per io_uring system call the engine
//! made, in order, with the field names of the tracer's own JSON output so
//! a test can compare the two streams field by field; and one `submit` line
//! per request (SQE) the engine queued, written once its outcome is known.
//!
//! A field that describes memory behind a pointer (the `arg` object of
//! io_uring_enter, the params fields of io_uring_setup, `ts` and `sigmask`
//! inside an EXT_ARG) is present only when that memory holds what the
//! engine put there and the kernel would accept its size: a tracer reading
//! it at entry gets exactly these values. When the pointer is deliberately
//! bad, or the size is one the kernel refuses without reading, the field is
//! absent, and only the raw pointer and size are reported.

use std::{
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// What io_uring_enter's `argp` pointed to.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnterArg {
    /// No EXT_ARG: argp is a `sigset_t *`.
    Sigset { sigmask: u64 },
    /// IORING_ENTER_EXT_ARG: argp is a `struct io_uring_getevents_arg *`.
    ExtArg {
        sigmask_ptr: u64,
        sigmask_sz: u32,
        min_wait_usec: u32,
        ts_ptr: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<Timespec>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sigmask: Option<u64>,
    },
    /// IORING_ENTER_EXT_ARG_REG: argp is a byte offset into the registered
    /// wait region, not a pointer.
    ExtArgReg { offset: u64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct EnterCall {
    pub fd: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub flags: u32,
    pub argp: u64,
    pub argsz: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arg: Option<EnterArg>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterCall {
    pub fd: u32,
    /// As passed, IORING_REGISTER_USE_REGISTERED_RING included.
    pub opcode: u32,
    pub arg: u64,
    pub nr_args: u32,
}

/// The io_uring_params fields as passed in (before the kernel wrote back).
#[derive(Debug, Clone, Serialize)]
pub struct SetupParams {
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub cq_entries: u32,
    pub wq_fd: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupCall {
    pub entries: u32,
    #[serde(flatten)]
    pub params_in: Option<SetupParams>,
    /// The `params` pointer.
    pub params: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Call {
    Setup(SetupCall),
    Enter(EnterCall),
    Register(RegisterCall),
}

impl Call {
    fn event(&self) -> &'static str {
        match self {
            Self::Setup(_) => "io_uring_setup",
            Self::Enter(_) => "io_uring_enter",
            Self::Register(_) => "io_uring_register",
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    event: &'static str,
    pid: u32,
    tid: u32,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    comm: Option<&'a ThreadName>,
    #[serde(flatten)]
    call: &'a Call,
    ret: i64,
    note: &'a str,
}

/// A name a scenario gave its thread, in the tracer's encoding: `comm` as
/// text (invalid UTF-8 as U+FFFD) and, only when the bytes are not UTF-8,
/// `comm_hex` with every byte.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadName {
    comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    comm_hex: Option<String>,
}

impl ThreadName {
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            comm: String::from_utf8_lossy(bytes).into_owned(),
            comm_hex: std::str::from_utf8(bytes)
                .is_err()
                .then(|| bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }
}

/// One request (SQE) and what became of it, as the engine reaped it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLine<'a> {
    /// The thread that put the SQE in the ring (also for an SQPOLL ring,
    /// whose kernel thread is the one that submits it).
    pub pid: u32,
    pub tid: u32,
    pub ring_fd: u32,
    pub opcode: u8,
    /// `null` for an opcode no kernel defines.
    pub opcode_name: Option<&'static str>,
    pub user_data: u64,
    /// The `IOSQE_*` bits as set in the SQE.
    pub sqe_flags: u8,
    /// The res of the terminal CQE (the one without IORING_CQE_F_MORE);
    /// absent when no CQE was posted (IOSQE_CQE_SKIP_SUCCESS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub res: Option<i32>,
    /// CQEs reaped for this SQE, the terminal one included.
    pub cqes: u32,
    /// The terminal CQE's flags, present only when the engine checked them
    /// against a value that is the same on every run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cflags: Option<u32>,
    /// The terminal CQE was posted while the CQ was full, so it went
    /// through the kernel's overflow list; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overflow: bool,
    /// What it touches, where the scenario reports it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub touches: Option<&'a super::requests::Touches>,
    pub note: &'a str,
}

#[derive(Serialize)]
struct SubmitLine<'a> {
    event: &'static str,
    #[serde(flatten)]
    request: &'a RequestLine<'a>,
}

/// Where the ground truth goes: a file, or nowhere when no report was asked
/// for (the calls and requests are still counted).
pub struct Report {
    out: Option<(File, PathBuf)>,
    calls: u64,
    requests: u64,
    /// The calling thread's name, while a scenario has set one.
    thread_name: Option<ThreadName>,
}

impl Report {
    pub fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        let out = match path {
            Some(path) => Some((
                File::create(path)
                    .with_context(|| format!("creating the report {}", path.display()))?,
                path.to_owned(),
            )),
            None => None,
        };
        Ok(Self {
            out,
            calls: 0,
            requests: 0,
            thread_name: None,
        })
    }

    /// From now on, call lines carry this thread name (`None`: none, the
    /// thread has its usual name again).
    pub fn set_thread_name(&mut self, name: Option<ThreadName>) {
        self.thread_name = name;
    }

    /// Calls recorded so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Requests recorded so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Appends one call. Each line goes out in a single unbuffered write,
    /// so a scenario that fails later, or a process that gets killed, leaves
    /// every call it made on disk.
    pub fn record(&mut self, call: &Call, ret: i64, note: &str) -> anyhow::Result<()> {
        self.calls += 1;
        let thread_name = self.thread_name.clone();
        let line = Line {
            event: call.event(),
            // SAFETY: getpid and gettid cannot fail.
            pid: unsafe { libc::getpid() } as u32,
            tid: unsafe { libc::gettid() } as u32,
            comm: thread_name.as_ref(),
            call,
            ret,
            note,
        };
        self.write(&line)
    }

    /// Appends one request line, written the same way as a call's.
    pub fn record_request(&mut self, request: &RequestLine<'_>) -> anyhow::Result<()> {
        self.requests += 1;
        self.write(&SubmitLine {
            event: "submit",
            request,
        })
    }

    /// Appends the line saying that (part of) a scenario was not run on
    /// this kernel, and why: tests that need it then skip out loud.
    pub fn record_skip(&mut self, scenario: &str, reason: &str) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct SkipLine<'a> {
            event: &'static str,
            scenario: &'a str,
            reason: &'a str,
        }
        self.write(&SkipLine {
            event: "skipped",
            scenario,
            reason,
        })
    }

    fn write(&mut self, line: &impl Serialize) -> anyhow::Result<()> {
        let Some((file, path)) = &mut self.out else {
            return Ok(());
        };
        let mut text = serde_json::to_string(line).context("serializing a report line")?;
        text.push('\n');
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing the report {}", path.display()))
    }
}
