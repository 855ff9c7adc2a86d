//! Program runs the kernel skipped. A hook that fires while the CPU's
//! recursion guard is held does not run its program: for perf tracepoints
//! and kprobes one program per CPU at a time (the per-CPU
//! `bpf_prog_active`), for raw and tp_btf tracepoints the same program
//! re-entered. An interrupt taken inside a program is enough, and on
//! kernels that run tracing programs preemptibly (Debian's 7.x, lazy
//! preemption) so is a task preempted inside one: the 7.2 VM lost
//! processes' first io_uring_setup entries that way. The kernel counts these
//! in each program's `recursion_misses` (bpf_prog_info, 5.12+; older
//! kernels count fewer hooks, perf tracepoints and kprobes only from 6.7):
//! the tracer adds them to its drops instead of losing the events silently.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Ebpf;

/// BPF_OBJ_GET_INFO_BY_FD.
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// The head of `struct bpf_prog_info` up to `recursion_misses` (uapi
/// layout; the kernel fills what it knows and zeroes the rest of the
/// `info_len` bytes asked for).
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    words: [u64; 26],
    recursion_misses: u64,
}

const _: () = assert!(std::mem::offset_of!(ProgInfoHead, recursion_misses) == 208);

#[repr(C)]
struct InfoByFd {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// Runs skipped by the kernel, summed over every loaded program of `ebpf`.
/// A program whose info cannot be read counts 0: the count is a floor.
pub fn skipped_runs(ebpf: &Ebpf) -> u64 {
    by_program(ebpf).iter().map(|(_, n)| n).sum()
}

/// The programs the kernel skipped runs of, with how many, most first.
pub fn by_program(ebpf: &Ebpf) -> Vec<(String, u64)> {
    let mut skipped: Vec<(String, u64)> = ebpf
        .programs()
        .filter_map(|(name, program)| {
            let n = recursion_misses(program.fd().ok()?.as_fd().as_raw_fd());
            (n > 0).then(|| (name.to_string(), n))
        })
        .collect();
    skipped.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    skipped
}

fn recursion_misses(fd: i32) -> u64 {
    let mut info = ProgInfoHead::default();
    let mut attr = InfoByFd {
        bpf_fd: fd as u32,
        info_len: size_of::<ProgInfoHead>() as u32,
        info: &mut info as *mut ProgInfoHead as u64,
    };
    // SAFETY: attr and the buffer it points to outlive the call, and
    // info_len is the buffer's size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoByFd,
            size_of::<InfoByFd>(),
        )
    };
    if ret != 0 {
        return 0;
    }
    info.recursion_misses
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_non_bpf_fd_counts_nothing() {
        assert_eq!(super::recursion_misses(0), 0);
    }
}
