//! Summary mode (`-c`/`-S`): counts, errors and latency histograms
//! aggregated in the kernel, per system call and per request opcode, in
//! per-CPU maps that userspace sums once at the end (or each refresh): no
//! per-event record has to cross to userspace.

/// log2 buckets: bucket `b` holds values in `[2^(b-1), 2^b)` ns (bucket 0
/// holds 0), as bcc's biolatency does.
pub const HIST_BUCKETS: usize = 64;

/// One system call's or one opcode's aggregate.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CallStats {
    /// Calls completed (system calls) or CQEs posted (requests).
    pub count: u64,
    /// Of those, with a negative result.
    pub errors: u64,
    /// Requests only: submissions (and SQEs rejected at submission).
    pub submitted: u64,
    /// Sum of the durations (system calls) or submit-to-CQE latencies of
    /// matched CQEs (requests), in ns.
    pub total_ns: u64,
    /// How many durations `total_ns` and `hist` hold (a call whose entry
    /// was not seen, or a CQE without its submission, has none).
    pub timed: u64,
    pub hist: [u64; HIST_BUCKETS],
}

impl CallStats {
    pub const ZERO: Self = Self {
        count: 0,
        errors: 0,
        submitted: 0,
        total_ns: 0,
        timed: 0,
        hist: [0; HIST_BUCKETS],
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for CallStats {}

/// Indexes of SYSCALL_STATS.
pub const SYSCALL_SETUP: u32 = 0;
pub const SYSCALL_ENTER: u32 = 1;
pub const SYSCALL_REGISTER: u32 = 2;
pub const SYSCALL_COUNT: u32 = 3;

/// OP_STATS has one slot per opcode value, plus this one for CQEs that
/// could not be joined to a submission (opcode unknown).
pub const OP_UNMATCHED: u32 = 256;
pub const OP_SLOTS: u32 = 257;

/// ERRNO_COUNTS keys: what failed (`ERRNO_SYSCALL` + SYSCALL_* index, or
/// `ERRNO_OPCODE` + OP_STATS index) and the errno.
pub const ERRNO_SYSCALL: u32 = 0;
pub const ERRNO_OPCODE: u32 = 1;
pub const MAX_ERRNO_KEYS: u32 = 4096;

pub const fn errno_key(source: u32, index: u32, errno: u32) -> u32 {
    (source << 24) | ((index & 0x1ff) << 12) | (errno & 0xfff)
}

pub const fn split_errno_key(key: u32) -> (u32, u32, u32) {
    (key >> 24, (key >> 12) & 0x1ff, key & 0xfff)
}

/// A request between submission and CQE, keyed by ring and request pointer
/// (by ring and user_data on kernels whose tracepoints have no request
/// pointer).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub ring: u64,
    pub req: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RequestStart {
    pub ts_ns: u64,
    pub opcode: u32,
    pub _pad: u32,
}

/// Requests followed at once in summary mode.
pub const MAX_TRACKED_REQUESTS: u32 = 1 << 16;

/// SUMMARY_MODE global.
pub const SUMMARY_OFF: u8 = 0;
/// Aggregate and emit every event (`-S`).
pub const SUMMARY_WITH_EVENTS: u8 = 1;
/// Aggregate only (`-c`).
pub const SUMMARY_ONLY: u8 = 2;

/// The log2 bucket of `ns`, without a loop or a count-leading-zeros
/// instruction (the BPF target has neither to spare).
#[inline(always)]
pub const fn bucket(ns: u64) -> usize {
    let mut v = ns;
    let mut b = 0usize;
    if v >= 1 << 32 {
        v >>= 32;
        b += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        b += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        b += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        b += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        b += 2;
    }
    if v >= 1 << 1 {
        v >>= 1;
        b += 1;
    }
    // v is now 0 or 1: bucket = bit length.
    let bits = b + v as usize;
    if bits >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        bits
    }
}

const _: () = {
    assert!(bucket(0) == 0);
    assert!(bucket(1) == 1);
    assert!(bucket(2) == 2 && bucket(3) == 2);
    assert!(bucket(4) == 3 && bucket(7) == 3);
    assert!(bucket(1023) == 10 && bucket(1024) == 11);
    assert!(bucket(u64::MAX) == 63);
    let (s, i, e) = split_errno_key(errno_key(1, 256, 125));
    assert!(s == 1 && i == 256 && e == 125);
};
