//! Decode tables: the names and numbers of the io_uring uapi (Linux 6.18,
//! plus what later releases added), errno and signal names, each table in
//! one place and checked against the kernel headers by `header_check`.

// Goes when the formatters use every table.
#![allow(dead_code)]

pub mod cqe_flags;
pub mod enter_flags;
pub mod errno_names;
pub mod flag_set;
pub mod open_flags;
pub mod register_opcodes;
pub mod setup_features;
pub mod setup_flags;
pub mod signal_names;
pub mod sqe_flags;
pub mod sqe_opcodes;

#[cfg(test)]
mod header_check;
