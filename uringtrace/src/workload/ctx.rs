//! What a scenario works with: every io_uring system call goes through
//! [`Ctx`], which makes it, records it in the ground truth, and hands back
//! the result for the scenario to check against what it expected. So does
//! every request: [`Ctx::queue`] puts it in the ring with what it must
//! complete with, and [`Ctx::reap`] checks its CQEs and reports it.

use std::{
    os::fd::{FromRawFd as _, IntoRawFd as _, OwnedFd},
    time::Duration,
};

use anyhow::{Context as _, bail, ensure};
use io_uring::{cqueue, opcode, squeue};

use super::{
    abi::{
        IORING_ENTER_EXT_ARG, IORING_ENTER_EXT_ARG_REG, IORING_ENTER_GETEVENTS,
        IoUringGeteventsArg, IoUringParams, IoUringRegWait, KERNEL_SIGSET_SIZE, KernelTimespec,
    },
    kernel_features::{Feature, KernelFeatures},
    raw,
    report::{self, Call, Report},
    requests::{Requests, Want},
    ring::Ring,
};

/// The run's state, handed to each scenario.
pub struct Ctx {
    report: Report,
    /// Name of the running scenario, prefixed to every note so the lines of
    /// a `tour` say where they come from.
    scenario: &'static str,
    /// Requests queued whose line is not yet written.
    requests: Requests,
    kernel: KernelFeatures,
}

impl Ctx {
    pub fn new(report: Report) -> Self {
        Self {
            report,
            scenario: "",
            requests: Requests::new(),
            kernel: KernelFeatures::detect(),
        }
    }

    /// Whether the running kernel has `feature`.
    pub fn has(&self, feature: Feature) -> bool {
        self.kernel.has(feature)
    }

    /// When the kernel lacks one of `features`, reports the scenario (or
    /// the part of it `what` names) as skipped, with the reason, in the
    /// ground truth and on stderr, and returns true: the caller then makes
    /// none of those calls.
    pub fn skip_unless(&mut self, features: &[Feature], what: &str) -> anyhow::Result<bool> {
        let Some(reason) = self.kernel.missing(features) else {
            return Ok(false);
        };
        let scenario = if what.is_empty() {
            self.scenario.to_string()
        } else {
            format!("{}: {what}", self.scenario)
        };
        eprintln!("workload {scenario}: skipped: {reason}");
        self.report.record_skip(&scenario, &reason)?;
        Ok(true)
    }

    /// Forgets the requests a failed scenario left in flight, so the next
    /// scenario of a `tour` is judged on its own.
    pub fn forget_requests(&mut self) {
        self.requests = Requests::new();
    }

    pub fn set_scenario(&mut self, name: &'static str) {
        self.scenario = name;
    }

    /// io_uring calls made so far.
    pub fn calls(&self) -> u64 {
        self.report.calls()
    }

    /// Requests reported so far.
    pub fn requests(&self) -> u64 {
        self.report.requests()
    }

    fn record(&mut self, call: Call, ret: i64, note: &str) -> anyhow::Result<Ret> {
        let step = format!("{}: {note}", self.scenario);
        self.report.record(&call, ret, &step)?;
        Ok(Ret { value: ret, step })
    }

    /// io_uring_setup with `params` (written back by the kernel on success).
    pub fn setup(
        &mut self,
        entries: u32,
        params: &mut IoUringParams,
        note: &str,
    ) -> anyhow::Result<SetupRet> {
        let passed = report::SetupParams {
            flags: params.flags,
            sq_thread_cpu: params.sq_thread_cpu,
            sq_thread_idle: params.sq_thread_idle,
            cq_entries: params.cq_entries,
            wq_fd: params.wq_fd,
        };
        let ptr = std::ptr::from_mut(params) as u64;
        // SAFETY: `ptr` is a live, writable io_uring_params.
        let ret = unsafe { raw::io_uring_setup(entries, ptr) };
        if ret >= 0 {
            self.kernel.saw_setup_features(params.features);
        }
        self.finish_setup(entries, Some(passed), ptr, ret, note)
    }

    /// io_uring_setup with a `params` pointer the kernel cannot read: no
    /// params are reported.
    ///
    /// # Safety
    /// `params` must be unmapped (or 0): were it mapped, the kernel would
    /// write an io_uring_params there on success.
    pub unsafe fn setup_unreadable(
        &mut self,
        entries: u32,
        params: u64,
        note: &str,
    ) -> anyhow::Result<SetupRet> {
        // SAFETY: the caller vouches that nothing lives at `params`.
        let ret = unsafe { raw::io_uring_setup(entries, params) };
        self.finish_setup(entries, None, params, ret, note)
    }

    fn finish_setup(
        &mut self,
        entries: u32,
        params_in: Option<report::SetupParams>,
        params: u64,
        ret: i64,
        note: &str,
    ) -> anyhow::Result<SetupRet> {
        // Own the fd before anything can fail, so it is closed on every path.
        let fd = (ret >= 0).then(|| {
            // SAFETY: a successful io_uring_setup returns a new fd we own.
            unsafe { OwnedFd::from_raw_fd(ret as i32) }
        });
        let call = Call::Setup(report::SetupCall {
            entries,
            params_in,
            params,
        });
        let ret = self.record(call, ret, note)?;
        Ok(SetupRet { ret, fd })
    }

    /// Sets up a ring the scenario then drives through the io-uring crate's
    /// queue accessors (which make no system calls of their own).
    pub fn ring(
        &mut self,
        entries: u32,
        mut params: IoUringParams,
        note: &str,
    ) -> anyhow::Result<Ring> {
        let fd = self.setup(entries, &mut params, note)?.expect_fd()?;
        Ring::from_setup(fd.into_raw_fd(), params)
            .with_context(|| format!("{}: mapping the rings of {note}", self.scenario))
    }

    /// io_uring_enter. Safe: the kernel only reads through argp, and
    /// reports a bad pointer as EFAULT.
    pub fn enter(&mut self, enter: Enter<'_>, note: &str) -> anyhow::Result<Ret> {
        enter.check_arg_kind().with_context(|| {
            format!(
                "{}: {note}: scenario bug, argument does not match the flags",
                self.scenario
            )
        })?;
        let (argp, argsz, arg) = match enter.arg {
            EnterArg::None => (0, 0, None),
            EnterArg::Sigset(mask) => (
                std::ptr::from_ref(mask) as u64,
                u64::from(KERNEL_SIGSET_SIZE),
                Some(report::EnterArg::Sigset { sigmask: *mask }),
            ),
            EnterArg::Ext(wait) => (
                std::ptr::from_ref(&wait.arg) as u64,
                size_of::<IoUringGeteventsArg>() as u64,
                Some(wait.truth()),
            ),
            EnterArg::ExtReg { offset } => (
                offset,
                size_of::<IoUringRegWait>() as u64,
                Some(report::EnterArg::ExtArgReg { offset }),
            ),
            EnterArg::Raw { argp, argsz } => (argp, argsz, None),
        };
        // SAFETY: argp is 0, one of our live values, or deliberately bad;
        // io_uring_enter never writes through it.
        let ret = unsafe {
            raw::io_uring_enter(
                enter.fd,
                enter.to_submit,
                enter.min_complete,
                enter.flags,
                argp,
                argsz,
            )
        };
        let call = Call::Enter(report::EnterCall {
            fd: enter.fd,
            to_submit: enter.to_submit,
            min_complete: enter.min_complete,
            flags: enter.flags,
            argp,
            argsz,
            arg,
        });
        self.record(call, ret, note)
    }

    /// io_uring_register.
    ///
    /// # Safety
    /// `arg` must be valid for `opcode` and `nr_args` as the kernel uses it:
    /// readable, writable where the opcode writes back (PROBE, RING_FDS,
    /// MEM_REGION), and alive as long as the kernel keeps using it (buffers
    /// and regions stay pinned until unregistered or the ring is closed).
    /// A deliberately bad `arg` must be unmapped.
    pub unsafe fn register(
        &mut self,
        fd: u32,
        opcode: u32,
        arg: u64,
        nr_args: u32,
        note: &str,
    ) -> anyhow::Result<Ret> {
        // SAFETY: the caller vouches for `arg`.
        let ret = unsafe { raw::io_uring_register(fd, opcode, arg, nr_args) };
        let call = Call::Register(report::RegisterCall {
            fd,
            opcode,
            arg,
            nr_args,
        });
        self.record(call, ret, note)
    }
}

impl Ctx {
    /// Queues `requests` on `ring` in one go (see [`Ring::push`]), each
    /// with a user_data of its own, and tracks them until their outcome is
    /// reaped. No system call: the scenario submits them. Returns their
    /// user_data, in order.
    ///
    /// # Safety
    /// Whatever the SQEs point to must stay valid until their requests
    /// complete.
    pub unsafe fn queue(
        &mut self,
        ring: &mut Ring,
        requests: Vec<Request<'_>>,
    ) -> anyhow::Result<Vec<u64>> {
        let sqes: Vec<squeue::Entry> = requests
            .iter()
            .map(|r| r.sqe.clone().user_data(self.requests.next_user_data()))
            .collect();
        // SAFETY: the caller vouches for what the SQEs point to.
        unsafe { ring.push(&sqes) }
            .with_context(|| format!("{}: queueing requests", self.scenario))?;
        for (sqe, request) in sqes.iter().zip(requests) {
            let note = format!("{}: {}", self.scenario, request.note);
            self.requests.track(ring.fd(), sqe, request.want, note);
        }
        Ok(sqes.iter().map(squeue::Entry::get_user_data).collect())
    }

    /// Queues `n` NOPs, each expected to complete with res 0.
    pub fn queue_nops(&mut self, ring: &mut Ring, n: u32, note: &str) -> anyhow::Result<Vec<u64>> {
        let nops = (0..n)
            .map(|_| Request::new(opcode::Nop::new().build(), Want::res(0), note))
            .collect();
        // SAFETY: a NOP references no memory.
        unsafe { self.queue(ring, nops) }
    }

    /// Takes the completions posted on `ring` so far (no system call),
    /// which must be exactly `n`, checks each against its request, and
    /// reports every request whose outcome is now complete; requests that
    /// are to post no CQE count as complete from here on.
    pub fn reap(&mut self, ring: &mut Ring, n: usize) -> anyhow::Result<Vec<cqueue::Entry>> {
        let cqes = ring.reap();
        self.settle(ring, cqes, n)
    }

    /// Like [`Ctx::reap`], but waits up to `timeout` for the `n`
    /// completions by watching the CQ, for SQPOLL rings, where an enter
    /// just to wait would be a call the scenario does not otherwise make.
    pub fn poll_reap(
        &mut self,
        ring: &mut Ring,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<cqueue::Entry>> {
        let cqes = ring
            .poll_reap(n, timeout)
            .with_context(|| format!("{}: waiting for completions", self.scenario))?;
        self.settle(ring, cqes, n)
    }

    fn settle(
        &mut self,
        ring: &Ring,
        cqes: Vec<cqueue::Entry>,
        n: usize,
    ) -> anyhow::Result<Vec<cqueue::Entry>> {
        let fd = ring.fd();
        for cqe in &cqes {
            if let Some(done) = self
                .requests
                .complete(fd, cqe)
                .with_context(|| format!("reaping ring {fd}"))?
            {
                self.report.record_request(&done.line())?;
            }
        }
        for done in self.requests.finish_cqe_less(fd) {
            self.report.record_request(&done.line())?;
        }
        ensure!(
            cqes.len() == n,
            "{}: {} completions on ring {fd}, expected {n}",
            self.scenario,
            cqes.len()
        );
        Ok(cqes)
    }

    /// Tells the ground truth the calling thread's name, for the call lines
    /// from now on (`None`: the usual name, not reported).
    pub fn report_thread_name(&mut self, name: Option<&[u8]>) {
        self.report
            .set_thread_name(name.map(report::ThreadName::new));
    }

    /// Fails if a request of the scenario has not been reported yet.
    pub fn check_requests_finished(&self) -> anyhow::Result<()> {
        self.requests
            .check_all_finished()
            .with_context(|| format!("{}: requests left without an outcome", self.scenario))
    }
}

/// One request for [`Ctx::queue`]: an SQE (its user_data is assigned
/// there), what it must complete with, and the step it is.
pub struct Request<'a> {
    pub sqe: squeue::Entry,
    pub want: Want,
    pub note: &'a str,
}

impl<'a> Request<'a> {
    pub fn new(sqe: squeue::Entry, want: Want, note: &'a str) -> Self {
        Self { sqe, want, note }
    }
}

/// One io_uring_enter call.
pub struct Enter<'a> {
    pub fd: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub flags: u32,
    pub arg: EnterArg<'a>,
}

impl Enter<'_> {
    /// An enter with no argument: argp = 0, argsz = 0.
    pub fn new(fd: u32, to_submit: u32, min_complete: u32, flags: u32) -> Self {
        Self {
            fd,
            to_submit,
            min_complete,
            flags,
            arg: EnterArg::None,
        }
    }

    /// The kernel only looks at argp when GETEVENTS is set, and then the
    /// EXT_ARG flags decide what it is. An argument whose kind the flags
    /// contradict would make the report describe memory the kernel (and
    /// the tracer) read as something else.
    fn check_arg_kind(&self) -> anyhow::Result<()> {
        let getevents = self.flags & IORING_ENTER_GETEVENTS != 0;
        let ext = self.flags & IORING_ENTER_EXT_ARG != 0;
        let reg = self.flags & IORING_ENTER_EXT_ARG_REG != 0;
        let ok = match self.arg {
            EnterArg::None | EnterArg::Raw { .. } => true,
            EnterArg::Sigset(_) => getevents && !ext,
            EnterArg::Ext(_) => getevents && ext && !reg,
            EnterArg::ExtReg { .. } => getevents && ext && reg,
        };
        if !ok {
            bail!("flags {:#x}", self.flags);
        }
        Ok(())
    }
}

/// What io_uring_enter's argp/argsz carry.
pub enum EnterArg<'a> {
    /// argp = 0, argsz = 0.
    None,
    /// A legacy sigset: argp = the mask, argsz = 8.
    Sigset(&'a u64),
    /// EXT_ARG: argp = the getevents arg, argsz = 24.
    Ext(&'a WaitArg),
    /// EXT_ARG_REG: argp = a byte offset into the registered wait region,
    /// argsz = sizeof(struct io_uring_reg_wait).
    ExtReg { offset: u64 },
    /// Anything else (bad pointers, wrong sizes): reported without an arg.
    Raw { argp: u64, argsz: u64 },
}

/// A `struct io_uring_getevents_arg` together with the timespec and sigset
/// it points to. Boxed (see [`WaitArg::new`]) so those pointers stay valid.
/// Scenarios may overwrite `arg` to make a pointer or size bad; the report
/// then leaves out what no longer points at our values.
pub struct WaitArg {
    pub arg: IoUringGeteventsArg,
    ts: KernelTimespec,
    mask: u64,
}

impl WaitArg {
    pub fn new(ts: Option<KernelTimespec>, sigmask: Option<u64>, min_wait_usec: u32) -> Box<Self> {
        let mut wait = Box::new(Self {
            arg: IoUringGeteventsArg {
                min_wait_usec,
                ..Default::default()
            },
            ts: ts.unwrap_or_default(),
            mask: sigmask.unwrap_or_default(),
        });
        if ts.is_some() {
            wait.arg.ts = wait.ts_addr();
        }
        if sigmask.is_some() {
            wait.arg.sigmask = wait.mask_addr();
            wait.arg.sigmask_sz = KERNEL_SIGSET_SIZE;
        }
        wait
    }

    fn ts_addr(&self) -> u64 {
        std::ptr::from_ref(&self.ts) as u64
    }

    fn mask_addr(&self) -> u64 {
        std::ptr::from_ref(&self.mask) as u64
    }

    fn truth(&self) -> report::EnterArg {
        let a = &self.arg;
        report::EnterArg::ExtArg {
            sigmask_ptr: a.sigmask,
            sigmask_sz: a.sigmask_sz,
            min_wait_usec: a.min_wait_usec,
            ts_ptr: a.ts,
            ts: (a.ts != 0 && a.ts == self.ts_addr()).then_some(report::Timespec {
                tv_sec: self.ts.tv_sec,
                tv_nsec: self.ts.tv_nsec,
            }),
            sigmask: (a.sigmask != 0
                && a.sigmask == self.mask_addr()
                && a.sigmask_sz == KERNEL_SIGSET_SIZE)
                .then_some(self.mask),
        }
    }
}

/// The return value of one call, to check against the scenario's
/// expectation. Checking fails the scenario with the call's note and both
/// values, so a kernel that disagrees is noticed.
#[must_use = "check the return value against what the scenario expects"]
pub struct Ret {
    pub value: i64,
    step: String,
}

impl Ret {
    pub fn expect(self, want: i64) -> anyhow::Result<i64> {
        if self.value != want {
            bail!(
                "{}: the kernel returned {}, expected {}",
                self.step,
                describe(self.value),
                describe(want)
            );
        }
        Ok(self.value)
    }

    /// Any success (>= 0).
    pub fn expect_ok(self) -> anyhow::Result<i64> {
        if self.value < 0 {
            bail!(
                "{}: the kernel returned {}, expected success",
                self.step,
                describe(self.value)
            );
        }
        Ok(self.value)
    }

    /// Failure with this errno (a positive `libc::E*`).
    pub fn expect_errno(self, errno: i32) -> anyhow::Result<()> {
        self.expect(-i64::from(errno)).map(drop)
    }

    /// `want` on a kernel with the feature the call uses (`supported`),
    /// else the errno older kernels refuse it with.
    pub fn expect_if(self, supported: bool, want: i64, errno: i32) -> anyhow::Result<()> {
        if supported {
            self.expect(want).map(drop)
        } else {
            self.expect_errno(errno)
        }
    }
}

/// The result of an io_uring_setup: owns the ring fd when one was made.
#[must_use = "check the return value against what the scenario expects"]
pub struct SetupRet {
    pub ret: Ret,
    fd: Option<OwnedFd>,
}

impl SetupRet {
    pub fn expect_fd(self) -> anyhow::Result<OwnedFd> {
        self.ret.expect_ok()?;
        self.fd.context("io_uring_setup succeeded without an fd")
    }

    /// Failure with this errno; an fd the kernel made anyway is closed.
    pub fn expect_errno(self, errno: i32) -> anyhow::Result<()> {
        self.ret.expect_errno(errno)
    }

    /// A ring on a kernel with the feature the call uses (`supported`),
    /// else a refusal with `errno`.
    pub fn expect_fd_if(self, supported: bool, errno: i32) -> anyhow::Result<Option<OwnedFd>> {
        if supported {
            self.expect_fd().map(Some)
        } else {
            self.expect_errno(errno).map(|()| None)
        }
    }
}

/// A return value for messages: `-22 (-EINVAL: Invalid argument)`.
pub(super) fn describe(ret: i64) -> String {
    if !(-4095..0).contains(&ret) {
        return ret.to_string();
    }
    let errno = -ret as i32;
    let text = std::io::Error::from_raw_os_error(errno);
    match errno_name(errno) {
        Some(name) => format!("{ret} (-{name}: {text})"),
        None => format!("{ret} ({text})"),
    }
}

fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSYS => "ENOSYS",
        libc::ETIME => "ETIME",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EBADFD => "EBADFD",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECANCELED => "ECANCELED",
        libc::EOWNERDEAD => "EOWNERDEAD",
        _ => return None,
    })
}
