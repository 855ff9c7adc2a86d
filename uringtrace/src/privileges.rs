//! Checking, before touching the kernel, that we may load and attach eBPF:
//! the kernel's own answer (EPERM) says nothing about what is missing.

use anyhow::bail;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The capabilities that matter for loading eBPF, from the effective set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub sys_admin: bool,
    pub bpf: bool,
    pub perfmon: bool,
}

impl Capabilities {
    pub fn current() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or(0);
        let has = |cap: u32| cap_eff & (1 << cap) != 0;
        Self {
            sys_admin: has(CAP_SYS_ADMIN),
            bpf: has(CAP_BPF),
            perfmon: has(CAP_PERFMON),
        }
    }

    pub fn sufficient(&self) -> bool {
        self.sys_admin || (self.bpf && self.perfmon)
    }
}

pub fn check() -> anyhow::Result<()> {
    if Capabilities::current().sufficient() {
        return Ok(());
    }
    bail!(
        "not enough privilege to trace: uringtrace loads eBPF programs, which needs root \
         (or CAP_BPF and CAP_PERFMON); run it with sudo"
    )
}

/// Kernels before 5.11 charge BPF maps and programs to RLIMIT_MEMLOCK.
pub fn raise_memlock_limit() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct; failure only matters on old
    // kernels, where loading then fails with its own errno.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };
}
