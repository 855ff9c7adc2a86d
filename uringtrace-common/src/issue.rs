//! The kprobe submit path (`--attach kprobe`, and `auto` on kernels without
//! the submit tracepoint): a kprobe on the function that issues a request
//! reads its `struct io_kiocb` at offsets userspace took from the running
//! kernel's BTF (no CO-RE in Rust eBPF). A request can be issued more than
//! once (io-wq retry after -EAGAIN, poll-driven retry): userspace takes the
//! first issue as its submission and drops the others.

use crate::header::RecordHeader;

/// Which function the record's kprobe is on (`IssueRecord.hook`); the
/// index into [`ISSUE_HOOKS`].
pub const HOOK_IO_ISSUE_SQE: u8 = 0;
pub const HOOK_IO_POLL_ISSUE: u8 = 1;
pub const HOOK_IO_SUBMIT_SQE: u8 = 2;

/// A probe on the issue path: its symbol, its program, the argument that
/// holds the `struct io_kiocb *`, and the kernel versions it is valid for
/// (`[from, until)`, `until` None for open-ended). Outside its window the
/// function is absent or does something else, so it is skipped.
#[derive(Clone, Copy, Debug)]
pub struct IssueHook {
    pub id: u8,
    pub symbol: &'static str,
    /// As in the submit event's `hook` field.
    pub hook_name: &'static str,
    pub program: &'static str,
    pub req_arg: u8,
    pub from: (u32, u32),
    pub until: Option<(u32, u32)>,
}

pub const ISSUE_HOOKS: [IssueHook; 3] = [
    IssueHook {
        id: HOOK_IO_ISSUE_SQE,
        symbol: "io_issue_sqe",
        hook_name: "kprobe:io_issue_sqe",
        program: "kprobe_io_issue_sqe",
        req_arg: 0,
        from: (5, 5),
        until: None,
    },
    // Retries of poll-driven requests run here; where the compiler inlined
    // io_issue_sqe into it, only this probe sees them.
    IssueHook {
        id: HOOK_IO_POLL_ISSUE,
        symbol: "io_poll_issue",
        hook_name: "kprobe:io_poll_issue",
        program: "kprobe_io_poll_issue",
        req_arg: 0,
        from: (6, 15),
        until: None,
    },
    // 5.1 to 5.4: `__io_submit_sqe(ctx, req, s, force_nonblock)`.
    IssueHook {
        id: HOOK_IO_SUBMIT_SQE,
        symbol: "__io_submit_sqe",
        hook_name: "kprobe:__io_submit_sqe",
        program: "kprobe_io_submit_sqe",
        req_arg: 1,
        from: (5, 1),
        until: Some((5, 5)),
    },
];

/// One issue of a request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IssueRecord {
    pub header: RecordHeader,
    /// As in `TracepointRecord`: the traced ring owner when the issue ran
    /// on a task outside the process filter, else 0.
    pub ring_owner: u32,
    /// `HOOK_*`.
    pub hook: u8,
    /// The ring has IORING_SETUP_SQPOLL (as the submit tracepoint's
    /// `sq_thread`); 2 when its flags could not be read.
    pub sq_thread: u8,
    pub opcode: u8,
    pub _pad: u8,
    pub ring: u64,
    pub req: u64,
    pub user_data: u64,
    /// `io_kiocb.flags` (REQ_F_*; the low byte is the SQE's IOSQE_* flags).
    pub req_flags: u64,
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for IssueRecord {}

/// BTF offsets the issue programs read; OFFSET_ABSENT where absent.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IssueLayout {
    /// Non-zero once userspace filled it in.
    pub enabled: u32,
    pub req_ctx: u32,
    pub req_opcode: u32,
    pub req_flags: u32,
    /// 4 before 6.10, then 8.
    pub req_flags_size: u32,
    /// `io_kiocb.cqe.user_data` (5.18+) or `io_kiocb.user_data`.
    pub req_user_data: u32,
    /// `io_ring_ctx.flags` (the IORING_SETUP_* flags).
    pub ctx_flags: u32,
    pub _pad: u32,
}

impl IssueLayout {
    pub const OFF: Self = {
        let a = crate::layout::OFFSET_ABSENT;
        Self {
            enabled: 0,
            req_ctx: a,
            req_opcode: a,
            req_flags: a,
            req_flags_size: 0,
            req_user_data: a,
            ctx_flags: a,
            _pad: 0,
        }
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for IssueLayout {}

const _: () = {
    assert!(core::mem::size_of::<IssueRecord>() == 48 + 8 + 32);
    let mut i = 0;
    while i < ISSUE_HOOKS.len() {
        assert!(ISSUE_HOOKS[i].id as usize == i);
        i += 1;
    }
    // The programs hard-code which argument is the request.
    assert!(ISSUE_HOOKS[HOOK_IO_ISSUE_SQE as usize].req_arg == 0);
    assert!(ISSUE_HOOKS[HOOK_IO_POLL_ISSUE as usize].req_arg == 0);
    assert!(ISSUE_HOOKS[HOOK_IO_SUBMIT_SQE as usize].req_arg == 1);
};
