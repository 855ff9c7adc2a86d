//! The registry of scenarios. Each is a short, deterministic sequence of
//! io_uring system calls and requests: the same calls, in the same order,
//! and the same requests with the same outcomes, on every run, each with
//! its expected result checked.

mod enter;
mod evasion;
mod failures;
mod fake_worker_names;
mod fds;
mod hostile_names;
mod register;
mod requests_chain;
mod requests_file;
mod requests_net;
mod requests_nop;
mod requests_overflow;
mod requests_paths;
mod requests_personality;
mod requests_poll;
mod requests_sqpoll;
mod requests_timeout;
mod setup;

use anyhow::Context as _;

use super::{
    abi::{IORING_ENTER_GETEVENTS, IoUringParams},
    ctx::{Ctx, Enter, Request},
    ring::Ring,
};

pub struct Scenario {
    /// Kebab-case name, as given on the command line.
    pub name: &'static str,
    /// One line for `--list`.
    pub about: &'static str,
    pub run: fn(&mut Ctx) -> anyhow::Result<()>,
    /// Whether `tour` runs it (scenarios too slow or too environment-bound
    /// for a quick pass opt out).
    pub in_tour: bool,
}

/// Every scenario, in the order `tour` runs them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "submit",
        about: "submit 4 NOPs: to_submit=4, no flags",
        run: enter::submit,
        in_tour: true,
    },
    Scenario {
        name: "getevents",
        about: "submit 4 NOPs and wait for them with GETEVENTS, then wait with to_submit=0",
        run: enter::getevents,
        in_tour: true,
    },
    Scenario {
        name: "ext-arg-timeout",
        about: "EXT_ARG waits that time out (-ETIME): 10ms relative, with min_wait_usec, ABS_TIMER, NO_IOWAIT",
        run: enter::ext_arg_timeout,
        in_tour: true,
    },
    Scenario {
        name: "ext-arg-sigmask",
        about: "EXT_ARG with a sigmask (SIGUSR1|SIGUSR2), alone and with a 10ms timeout",
        run: enter::ext_arg_sigmask,
        in_tour: true,
    },
    Scenario {
        name: "legacy-sigmask",
        about: "GETEVENTS with argp = a plain sigset (argsz 8) and a completion ready",
        run: enter::legacy_sigmask,
        in_tour: true,
    },
    Scenario {
        name: "ext-arg-reg",
        about: "EXT_ARG_REG: wait arguments in a registered wait region (MEM_REGION), by offset",
        run: enter::ext_arg_reg,
        in_tour: true,
    },
    Scenario {
        name: "long-wait",
        about: "one 5s wait that times out, EXT_ARG (a TIMEOUT request before 5.11); for attaching mid-call, not in tour",
        run: enter::long_wait,
        in_tour: false,
    },
    Scenario {
        name: "sqpoll",
        about: "SQPOLL ring: the SQ thread submits on its own, then SQ_WAKEUP and SQ_WAIT enters",
        run: enter::sqpoll,
        in_tour: true,
    },
    Scenario {
        name: "registered-ring",
        about: "REGISTER_RING_FDS, enter and register through the ring index, UNREGISTER_RING_FDS",
        run: enter::registered_ring,
        in_tour: true,
    },
    Scenario {
        name: "register-buffers",
        about: "REGISTER_BUFFERS with 2 iovecs, UNREGISTER_BUFFERS",
        run: register::buffers,
        in_tour: true,
    },
    Scenario {
        name: "register-files",
        about: "REGISTER_FILES with 3 slots (one sparse), UNREGISTER_FILES",
        run: register::files,
        in_tour: true,
    },
    Scenario {
        name: "register-eventfd",
        about: "REGISTER_EVENTFD, a NOP that signals it, UNREGISTER_EVENTFD, EVENTFD_ASYNC",
        run: register::eventfd,
        in_tour: true,
    },
    Scenario {
        name: "probe",
        about: "REGISTER_PROBE with room for 256 ops",
        run: register::probe,
        in_tour: true,
    },
    Scenario {
        name: "restrictions",
        about: "R_DISABLED ring: enter refused, REGISTER_RESTRICTIONS, ENABLE_RINGS, restricted use",
        run: register::restrictions,
        in_tour: true,
    },
    Scenario {
        name: "setup-params",
        about: "io_uring_setup with CQSIZE, ATTACH_WQ, CLAMP, SQPOLL+SQ_AFF and other flag sets",
        run: setup::params,
        in_tour: true,
    },
    Scenario {
        name: "failures",
        about: "invalid calls: bad fds, flags, pointers, sizes, opcodes and params",
        run: failures::failures,
        in_tour: true,
    },
    Scenario {
        name: "nop-storm",
        about: "256 NOPs, 32 per submit-and-wait enter",
        run: requests_nop::nop_storm,
        in_tour: true,
    },
    Scenario {
        name: "link-chain",
        about: "IO_LINK chains broken at execution and at init, IO_HARDLINK, IO_DRAIN, CQE_SKIP_SUCCESS, opcode 200",
        run: requests_chain::link_chain,
        in_tour: true,
    },
    Scenario {
        name: "file-io",
        about: "WRITE, READ, WRITEV, READV, WRITE_FIXED, READ_FIXED (REGISTER_BUFFERS), READ of a fixed file",
        run: requests_file::file_io,
        in_tour: true,
    },
    Scenario {
        name: "async-forced",
        about: "IOSQE_ASYNC on a NOP, a WRITE and a READ linked after it: all through io-wq",
        run: requests_file::async_forced,
        in_tour: true,
    },
    Scenario {
        name: "timeouts",
        about: "TIMEOUT expiring, completed by count, removed; LINK_TIMEOUT firing on a READ, and cancelled",
        run: requests_timeout::timeouts,
        in_tour: true,
    },
    Scenario {
        name: "poll-pipe",
        about: "POLL_ADD on a pipe: armed then fired by a write(2), and ready at submission",
        run: requests_poll::poll_pipe,
        in_tour: true,
    },
    Scenario {
        name: "fs-paths",
        about: "OPENAT, OPENAT2 (a name with a newline and ESC), STATX, MKDIRAT, LINKAT, SYMLINKAT, RENAMEAT, UNLINKAT",
        run: requests_paths::fs_paths,
        in_tour: true,
    },
    Scenario {
        name: "net-loopback",
        about: "TCP on 127.0.0.1: ACCEPT, CONNECT, SEND, RECV, SHUTDOWN with a linked RECV (EOF), CLOSE",
        run: requests_net::net_loopback,
        in_tour: true,
    },
    Scenario {
        name: "multishot-recv",
        about: "RECV multishot into a PBUF_RING: 3 messages then EOF, 2 messages then ASYNC_CANCEL",
        run: requests_net::multishot_recv,
        in_tour: true,
    },
    Scenario {
        name: "sqpoll-requests",
        about: "SQPOLL ring: 2 NOPs and a pipe READ submitted by the SQ thread, reaped without a syscall",
        run: requests_sqpoll::sqpoll_requests,
        in_tour: true,
    },
    Scenario {
        name: "cq-overflow",
        about: "8 NOPs into a 4-entry CQ: the last 4 overflow, flushed by a GETEVENTS enter",
        run: requests_overflow::cq_overflow,
        in_tour: true,
    },
    Scenario {
        name: "hostile-names",
        about: "a NOP under each of 7 hostile thread names: newline, CR+DEL, quote+backslash, ANSI escapes, invalid UTF-8, C1 CSI, RLO",
        run: hostile_names::hostile_names,
        in_tour: true,
    },
    Scenario {
        name: "requests-personality",
        about: "REGISTER_PERSONALITY under other ids, then a NOP and an OPENAT (EACCES) under it; needs root, not in tour",
        run: requests_personality::requests_personality,
        in_tour: false,
    },
    Scenario {
        name: "fake-worker-names",
        about: "a thread named iou-wrk-99, then iou-sqp-99: a NOP inline and one through io-wq under each; not in tour",
        run: fake_worker_names::fake_worker_names,
        in_tour: false,
    },
    Scenario {
        name: "evasion",
        about: "like the curing rootkit: OPENAT and READ of /etc/passwd, CONNECT to 127.0.0.1, SEND, RECV, all through io_uring, no open/read/connect/send system call",
        run: evasion::evasion,
        in_tour: false,
    },
    Scenario {
        name: "tour",
        about: "every scenario above, in this order",
        run: tour,
        in_tour: false,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Runs one scenario, naming it in the notes of its calls and in its error.
pub fn run(ctx: &mut Ctx, scenario: &'static Scenario) -> anyhow::Result<()> {
    ctx.set_scenario(scenario.name);
    (scenario.run)(ctx)
        .and_then(|()| ctx.check_requests_finished())
        .with_context(|| format!("scenario `{}` failed", scenario.name))
}

/// Runs every scenario even when one fails, so a kernel that disagrees
/// with several shows them all in one run; fails at the end, naming each.
fn tour(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for scenario in SCENARIOS.iter().filter(|s| s.in_tour) {
        if let Err(e) = run(ctx, scenario) {
            eprintln!("workload tour: {e:#}");
            ctx.forget_requests();
            failed.push(scenario.name);
        }
    }
    ctx.set_scenario("tour");
    anyhow::ensure!(
        failed.is_empty(),
        "{} scenarios failed: {}",
        failed.len(),
        failed.join(", ")
    );
    Ok(())
}

/// The ring most scenarios need: 8 entries, no flags.
fn basic_ring(ctx: &mut Ctx) -> anyhow::Result<Ring> {
    ctx.ring(8, IoUringParams::default(), "8-entry ring, no flags")
}

/// Queues `requests`, submits them in one enter that waits for every CQE
/// they are to post, and reaps those.
///
/// # Safety
/// As for [`Ctx::queue`].
unsafe fn submit_and_reap(
    ctx: &mut Ctx,
    ring: &mut Ring,
    requests: Vec<Request<'_>>,
    what: &str,
) -> anyhow::Result<()> {
    let count = requests.len() as u32;
    let cqes = requests.iter().map(|r| r.want.cqes()).sum();
    // SAFETY: the caller vouches for what the SQEs point to.
    unsafe { ctx.queue(ring, requests) }?;
    submit_and_wait(ctx, ring, count, cqes, what)
}

/// Submits the `count` SQEs queued on `ring` in one enter that waits for
/// `cqes` completions, and reaps exactly those.
fn submit_and_wait(
    ctx: &mut Ctx,
    ring: &mut Ring,
    count: u32,
    cqes: usize,
    what: &str,
) -> anyhow::Result<()> {
    ctx.enter(
        Enter::new(ring.fd(), count, cqes as u32, IORING_ENTER_GETEVENTS),
        &format!("submit and wait for {what}"),
    )?
    .expect(i64::from(count))?;
    ctx.reap(ring, cqes)?;
    Ok(())
}
