//! Records shared by the uringtrace eBPF programs and the userspace tracer.
//!
//! Every record starts with a [`RecordHeader`]; its `kind` says which record
//! follows. Kinds are stable numbers, grouped by range, because they leave the
//! process (NDJSON consumers key on the event names derived from them).
//! Every struct is `#[repr(C)]` with explicit padding so both sides agree on
//! the layout without relying on compiler padding rules.
#![no_std]

pub mod counters;
pub mod filter;
pub mod header;
pub mod hook_mode;
pub mod issue;
pub mod layout;
pub mod record_recipe;
pub mod request;
pub mod request_object;
pub mod summary;
pub mod syscall;

pub use header::{
    HDR_ENTRY_MISSING_FLAG, HDR_IO_WORKER, HDR_TASK_FLAGS_READ, PF_IO_WORKER, RecordHeader,
    RecordKind,
};

/// Bumped whenever any record layout changes. The userspace side refuses
/// records of another version rather than misreading them.
pub const RECORD_VERSION: u16 = 4;

/// Length of the kernel's `task_struct::comm`.
pub const COMM_LEN: usize = 16;
