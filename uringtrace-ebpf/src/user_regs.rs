//! The registers a task entered the kernel with (`struct pt_regs`), where
//! the kprobe and raw-syscall hooks find a system call's arguments.

use aya_ebpf::helpers::bpf_probe_read_kernel;

use crate::syscalls::SyscallArgs;

/// x86-64 passes syscall arguments in di, si, dx, r10, r8, r9, at these
/// offsets of `struct pt_regs` (the architecture's fixed frame layout).
const PT_REGS_DI: usize = 112;
const PT_REGS_SI: usize = 104;
const PT_REGS_DX: usize = 96;
const PT_REGS_R10: usize = 56;
const PT_REGS_R8: usize = 72;
const PT_REGS_R9: usize = 64;
/// The system call number, kept apart from ax (which gets the result).
const PT_REGS_ORIG_AX: usize = 120;
/// The code segment the call came from.
const PT_REGS_CS: usize = 136;
/// `__USER32_CS`: a 32-bit (ia32) task, whose arguments are in other
/// registers (bx, cx, dx, si, di, bp).
const USER32_CS: u64 = 0x23;

/// A `struct pt_regs *` of user registers.
#[derive(Clone, Copy)]
pub struct UserRegs(pub u64);

impl UserRegs {
    #[inline(always)]
    fn read(self, offset: usize) -> Result<u64, i32> {
        unsafe { bpf_probe_read_kernel((self.0 as usize + offset) as *const u64) }
    }

    /// The number of the system call being made.
    #[inline(always)]
    pub fn syscall_nr(self) -> Result<u64, i32> {
        self.read(PT_REGS_ORIG_AX)
    }

    /// A call from a 32-bit task: the syscall tracepoints skip those (the
    /// kernel ignores compat calls there), and so do the raw hooks, whose
    /// argument registers would be the wrong ones.
    #[inline(always)]
    pub fn is_ia32(self) -> bool {
        self.read(PT_REGS_CS).is_ok_and(|cs| cs == USER32_CS)
    }
}

impl SyscallArgs for UserRegs {
    #[inline(always)]
    fn arg(&self, n: usize) -> Result<u64, i32> {
        let offset = match n {
            0 => PT_REGS_DI,
            1 => PT_REGS_SI,
            2 => PT_REGS_DX,
            3 => PT_REGS_R10,
            4 => PT_REGS_R8,
            _ => PT_REGS_R9,
        };
        self.read(offset)
    }
}
