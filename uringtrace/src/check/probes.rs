//! The raw `bpf()` and `perf_event_open()` calls the check makes: create a
//! ring buffer map, load a two-instruction program of some type, attach it
//! the way that program type attaches. Each returns the kernel's errno
//! (with the verifier's log for loads) instead of interpreting it: the
//! report shows exactly which step this kernel refused.
//!
//! The attribute structs are the prefixes of the uapi unions
//! (`include/uapi/linux/bpf.h`, `perf_event.h`) that these commands read;
//! the kernel zero-fills the rest.

use std::{
    ffi::CStr,
    io,
    mem::{offset_of, size_of},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;

const BPF_MAP_TYPE_RINGBUF: u32 = 27;

pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
pub const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
pub const BPF_PROG_TYPE_TRACING: u32 = 26;

pub const BPF_TRACE_RAW_TP: u32 = 23;
pub const BPF_TRACE_FENTRY: u32 = 24;

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IOW('$', 8, __u32)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    _pad: u32,
}

// The offsets of `union bpf_attr` for BPF_PROG_LOAD, as the kernel reads them.
const _: () = {
    assert!(offset_of!(ProgLoadAttr, log_buf) == 32);
    assert!(offset_of!(ProgLoadAttr, prog_name) == 48);
    assert!(offset_of!(ProgLoadAttr, expected_attach_type) == 68);
    assert!(offset_of!(ProgLoadAttr, attach_btf_id) == 108);
    assert!(size_of::<ProgLoadAttr>() == 120);
};

#[repr(C)]
struct RawTracepointOpenAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// `struct perf_event_attr` up to PERF_ATTR_SIZE_VER5 (every kernel since
/// 4.1 takes it).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    event_type: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    /// `kprobe_func` for the kprobe PMU: the symbol's name.
    config1: u64,
    /// `probe_offset` for the kprobe PMU.
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    _reserved: u16,
}

const _: () = {
    assert!(offset_of!(PerfEventAttr, config1) == 56);
    assert!(size_of::<PerfEventAttr>() == 112);
};

/// One eBPF instruction.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

/// `r0 = 0; exit`: the smallest program every program type accepts.
const RETURN_ZERO: [Insn; 2] = [
    // BPF_ALU64 | BPF_MOV | BPF_K
    Insn {
        code: 0xb7,
        regs: 0,
        off: 0,
        imm: 0,
    },
    // BPF_JMP | BPF_EXIT
    Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    },
];

/// Tracing programs must be GPL-compatible to attach.
const LICENSE: &CStr = c"GPL";

/// What the verifier log may hold: plenty for two instructions, and for the
/// attach-target messages of tracing programs.
const LOG_SIZE: usize = 64 * 1024;

/// `bpf(cmd, attr, size)`, returning the new fd.
///
/// # Safety
/// `attr` must be a bpf_attr prefix for `cmd` whose pointers are valid for
/// the call.
unsafe fn bpf_fd<T>(cmd: libc::c_long, attr: &T) -> io::Result<OwnedFd> {
    // SAFETY: the caller vouches for attr; the size is its own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: these commands return a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// Creates a BPF ring buffer (what uringtrace streams its records through,
/// Linux 5.8+) of one page.
pub fn create_ringbuf() -> io::Result<OwnedFd> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_RINGBUF,
        key_size: 0,
        value_size: 0,
        max_entries: u32::try_from(page).unwrap_or(4096),
        map_flags: 0,
    };
    // SAFETY: a BPF_MAP_CREATE attr without pointers.
    unsafe { bpf_fd(BPF_MAP_CREATE, &attr) }
}

/// A refused program load: the errno and the verifier's last words.
#[derive(Debug)]
pub struct LoadError {
    pub error: io::Error,
    /// The last non-empty lines of the verifier log, if it said anything.
    pub log: Option<String>,
}

/// Which program to load.
#[derive(Debug, Clone, Copy)]
pub struct ProgramSpec {
    pub prog_type: u32,
    pub expected_attach_type: u32,
    /// The BTF type id of the hook (tracing programs), else 0.
    pub attach_btf_id: u32,
}

/// Loads `r0 = 0; exit` as `spec` says.
pub fn load_program(spec: ProgramSpec) -> Result<OwnedFd, LoadError> {
    let mut log = vec![0u8; LOG_SIZE];
    let attr = ProgLoadAttr {
        prog_type: spec.prog_type,
        insn_cnt: RETURN_ZERO.len() as u32,
        insns: RETURN_ZERO.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: 1,
        log_size: LOG_SIZE as u32,
        log_buf: log.as_mut_ptr() as u64,
        expected_attach_type: spec.expected_attach_type,
        attach_btf_id: spec.attach_btf_id,
        ..ProgLoadAttr::default()
    };
    // SAFETY: insns, license and log point to live buffers of the sizes
    // given, which outlive the call.
    unsafe { bpf_fd(BPF_PROG_LOAD, &attr) }.map_err(|error| LoadError {
        error,
        log: log_tail(&log),
    })
}

/// The last lines of a NUL-terminated verifier log: where it says why.
fn log_tail(log: &[u8]) -> Option<String> {
    let text = CStr::from_bytes_until_nul(log).ok()?.to_string_lossy();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(2)..].join(" / ");
    (!tail.is_empty()).then_some(tail)
}

/// Attaches a tracing program (tp_btf, fentry) to the hook its
/// `attach_btf_id` names: `BPF_RAW_TRACEPOINT_OPEN` without a name, which
/// every kernel with tracing programs (5.5+) takes. Dropping the fd detaches.
pub fn attach_tracing(prog: &OwnedFd) -> io::Result<OwnedFd> {
    let attr = RawTracepointOpenAttr {
        name: 0,
        prog_fd: prog.as_raw_fd() as u32,
        _pad: 0,
    };
    // SAFETY: a BPF_RAW_TRACEPOINT_OPEN attr with a null name.
    unsafe { bpf_fd(BPF_RAW_TRACEPOINT_OPEN, &attr) }
}

/// `perf_event_open(attr, pid -1, cpu 0)`: every process, one CPU, which is
/// enough to attach a program.
fn perf_event_open(attr: &PerfEventAttr) -> io::Result<OwnedFd> {
    // SAFETY: attr is a valid perf_event_attr of the size it declares, and
    // any pointer in it (a kprobe's symbol) outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returns a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// A perf event on the tracepoint with this tracefs `id`.
pub fn open_tracepoint_event(tracepoint_id: u64) -> io::Result<OwnedFd> {
    perf_event_open(&PerfEventAttr {
        event_type: PERF_TYPE_TRACEPOINT,
        size: size_of::<PerfEventAttr>() as u32,
        config: tracepoint_id,
        sample_period: 1,
        wakeup_events: 1,
        ..PerfEventAttr::default()
    })
}

/// A kprobe on the entry of `symbol` through the kprobe PMU of this `pmu_type`.
pub fn open_kprobe_event(pmu_type: u32, symbol: &CStr) -> io::Result<OwnedFd> {
    perf_event_open(&PerfEventAttr {
        event_type: pmu_type,
        size: size_of::<PerfEventAttr>() as u32,
        config1: symbol.as_ptr() as u64,
        sample_period: 1,
        wakeup_events: 1,
        ..PerfEventAttr::default()
    })
}

/// Runs `prog` on every hit of the perf event: how tracepoint and kprobe
/// programs attach on every kernel. Closing either fd detaches.
pub fn set_bpf(event: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    // SAFETY: ioctl on an fd we own, with an int argument.
    let rc = unsafe {
        libc::ioctl(
            event.as_raw_fd(),
            PERF_EVENT_IOC_SET_BPF as _,
            prog.as_raw_fd(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let mut log = b"func#0 @0\n\nattach_btf_id 5 is not a function\n\0junk".to_vec();
        log.resize(64, 0);
        assert_eq!(
            log_tail(&log).as_deref(),
            Some("func#0 @0 / attach_btf_id 5 is not a function")
        );
        assert_eq!(log_tail(&[0; 8]), None);
        assert_eq!(log_tail(b"no nul"), None);
    }
}
