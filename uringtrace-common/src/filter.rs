//! Process filter shared with the kernel.

/// `FILTER_MODE` global: trace every process.
pub const FILTER_ALL: u8 = 0;
/// `FILTER_MODE` global: trace only thread groups in `TRACED_TGIDS`.
pub const FILTER_TGIDS: u8 = 1;

/// Max processes the in-kernel filter holds (the traced process and every
/// descendant when following forks).
pub const MAX_TRACED_TGIDS: u32 = 16384;
/// Values in `TRACED_TGIDS`: how the process got in.
pub const TRACED_EXPLICIT: u8 = 1;
pub const TRACED_FORKED: u8 = 2;

/// `--uid`, `--comm` and `--cgroup`, checked in the kernel before anything
/// is read. A zero `enabled` field turns that filter off.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskFilter {
    pub uid_enabled: u32,
    pub uid: u32,
    pub comm_enabled: u32,
    pub _pad: u32,
    /// NUL-padded, as the kernel's `task->comm`.
    pub comm: [u8; crate::COMM_LEN],
    /// cgroup v2 id (the cgroup directory's inode number); 0: off.
    pub cgroup_id: u64,
}

impl TaskFilter {
    pub const OFF: Self = Self {
        uid_enabled: 0,
        uid: 0,
        comm_enabled: 0,
        _pad: 0,
        comm: [0; crate::COMM_LEN],
        cgroup_id: 0,
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for TaskFilter {}

/// Processes that passed the comm filter, so that their io_uring worker
/// threads (`iou-wrk-*`, `iou-sqp-*`: other comms, same thread group) pass
/// too.
pub const MAX_COMM_TGIDS: u32 = 4096;
