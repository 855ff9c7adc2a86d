//! The header every ring-buffer record starts with.

use crate::COMM_LEN;

/// Stable numeric kinds. Ranges: 1-99 system calls, 100-199 requests
/// (io_uring tracepoints), 200-299 process lifecycle.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Setup = 1,
    Enter = 2,
    Register = 3,
    RingCreate = 100,
    RingRegister = 101,
    Submit = 102,
    Complete = 103,
    ReqFailed = 104,
    CqeOverflow = 105,
    QueueAsyncWork = 106,
    PollArm = 107,
    TaskAdd = 108,
    Defer = 109,
    Link = 110,
    FailLink = 111,
    CqringWait = 112,
    TaskWorkRun = 113,
    LocalWorkRun = 114,
    ShortWrite = 115,
    FileGet = 116,
    /// What a request touches (request_object.rs), from the submit tracepoint.
    RequestObject = 150,
    /// A request issued, seen by a kprobe on the issue path (issue.rs):
    /// decoded as a `submit` event.
    Issue = 151,
}

impl RecordKind {
    pub const fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Setup),
            2 => Some(Self::Enter),
            3 => Some(Self::Register),
            100 => Some(Self::RingCreate),
            101 => Some(Self::RingRegister),
            102 => Some(Self::Submit),
            103 => Some(Self::Complete),
            104 => Some(Self::ReqFailed),
            105 => Some(Self::CqeOverflow),
            106 => Some(Self::QueueAsyncWork),
            107 => Some(Self::PollArm),
            108 => Some(Self::TaskAdd),
            109 => Some(Self::Defer),
            110 => Some(Self::Link),
            111 => Some(Self::FailLink),
            112 => Some(Self::CqringWait),
            113 => Some(Self::TaskWorkRun),
            114 => Some(Self::LocalWorkRun),
            115 => Some(Self::ShortWrite),
            116 => Some(Self::FileGet),
            150 => Some(Self::RequestObject),
            151 => Some(Self::Issue),
            _ => None,
        }
    }
}

/// The entry of this call was not seen (the call started before the tracer
/// attached, or the in-flight table was full): the arguments are unknown and
/// zero, only the result is real.
pub const HDR_ENTRY_MISSING_FLAG: u32 = 1 << 0;
/// The task's `task_struct.flags` were read (request records, on kernels
/// whose BTF gives their offset, 5.12 and later): `HDR_IO_WORKER` says
/// whether it is an io_uring kernel thread. Without this bit, userspace can
/// only go by the thread's name, which any thread can choose.
pub const HDR_TASK_FLAGS_READ: u32 = 1 << 1;
/// The task has `PF_IO_WORKER`: an io-wq worker or an SQPOLL thread (5.12+).
pub const HDR_IO_WORKER: u32 = 1 << 2;

/// `PF_IO_WORKER` in `task_struct.flags`. A `#define` in
/// `include/linux/sched.h`, so BTF does not carry it; its value has been
/// 0x10 since io-wq came (5.5), and since 5.12 the kernel sets it on every
/// io_uring thread it creates (io-wq workers and SQPOLL threads, both made
/// by `create_io_thread`), and on nothing else: a process cannot set it.
pub const PF_IO_WORKER: u32 = 0x0000_0010;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RecordHeader {
    pub version: u16,
    pub kind: u16,
    /// `HDR_*` bits.
    pub flags: u32,
    /// `bpf_ktime_get_ns()` at syscall entry (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Thread group id (what userspace calls the pid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The task's real uid and gid (`task->cred`, what `bpf_get_current_uid_gid()` gives).
    pub uid: u32,
    pub gid: u32,
    pub comm: [u8; COMM_LEN],
}

impl RecordHeader {
    pub const fn empty(kind: RecordKind) -> Self {
        Self {
            version: crate::RECORD_VERSION,
            kind: kind as u16,
            flags: 0,
            ts_ns: 0,
            pid: 0,
            tid: 0,
            uid: 0,
            gid: 0,
            comm: [0; COMM_LEN],
        }
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for RecordHeader {}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == 48);

/// Where the header's task fields are in this kernel's `task_struct` and
/// `struct cred` (offsets from BTF), so that the programs fill headers with
/// plain loads through `bpf_get_current_task_btf()` (5.11+): one helper
/// call where pid/tgid, uid/gid, comm and the task's flags took four, each
/// a call and a return into the kernel, which on CPUs with return-stack
/// mitigations is most of what a short helper costs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskLayout {
    /// Non-zero when every offset below was found; zero keeps the helpers.
    pub enabled: u32,
    /// `task_struct.pid`: the thread id.
    pub pid: u32,
    /// `task_struct.tgid`: the thread group (process) id.
    pub tgid: u32,
    /// `task_struct.comm`, 16 bytes.
    pub comm: u32,
    /// `task_struct.cred`: the subjective credentials, those
    /// `bpf_get_current_uid_gid()` reads.
    pub cred: u32,
    /// `cred.uid` and `cred.gid` (`kuid_t`/`kgid_t`, 4 bytes). The raw
    /// value is the id in the initial user namespace, as the helper gives.
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub _pad: u32,
}

impl TaskLayout {
    pub const OFF: Self = Self {
        enabled: 0,
        pid: 0,
        tgid: 0,
        comm: 0,
        cred: 0,
        cred_uid: 0,
        cred_gid: 0,
        _pad: 0,
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for TaskLayout {}
