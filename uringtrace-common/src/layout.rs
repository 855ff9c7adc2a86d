//! Offsets into tracepoint records, resolved by userspace from the running
//! kernel's tracefs `format` files and passed to the programs as globals
//! (Rust eBPF has no CO-RE). `OFFSET_ABSENT` marks a field this kernel lacks.

pub const OFFSET_ABSENT: u32 = u32::MAX;
