//! The three io_uring system calls, made directly so the engine knows every
//! argument the kernel saw and the exact return value.
//!
//! Pointers travel as plain `u64` because several scenarios pass addresses
//! that are deliberately not valid pointers (8, unaligned offsets). Each
//! wrapper returns what the kernel returned: a value >= 0, or -errno.
//!
//! Every argument is widened to a full register before the variadic
//! `syscall(2)`: a 32-bit value passed through `...` may leave the upper
//! half of its register undefined, and the raw_syscalls/syscalls
//! tracepoints report whole registers, so the tracer would see noise there.

/// Turns libc's `-1` + errno convention back into the kernel's return value.
fn kernel_ret(ret: libc::c_long) -> i64 {
    if ret == -1 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        -i64::from(errno)
    } else {
        ret
    }
}

/// A 32-bit argument zero-extended to a register.
fn reg(v: u32) -> u64 {
    u64::from(v)
}

/// `io_uring_setup(entries, params)`.
///
/// # Safety
/// `params` must be 0, an address the kernel will fail to read, or point to
/// a writable `struct io_uring_params` (the kernel writes it back).
pub unsafe fn io_uring_setup(entries: u32, params: u64) -> i64 {
    // SAFETY: the caller vouches for `params`; the kernel checks the rest.
    kernel_ret(unsafe { libc::syscall(libc::SYS_io_uring_setup, reg(entries), params) })
}

/// `io_uring_enter(fd, to_submit, min_complete, flags, argp, argsz)`.
///
/// # Safety
/// `argp` must be 0, an address the kernel will fail to read, or point to
/// memory valid for what `flags` make the kernel read from it.
pub unsafe fn io_uring_enter(
    fd: u32,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
    argp: u64,
    argsz: u64,
) -> i64 {
    // SAFETY: the caller vouches for `argp`; the kernel checks the rest.
    kernel_ret(unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            reg(fd),
            reg(to_submit),
            reg(min_complete),
            reg(flags),
            argp,
            argsz,
        )
    })
}

/// `io_uring_register(fd, opcode, arg, nr_args)`.
///
/// # Safety
/// `arg` must be 0, an address the kernel will fail to read, or point to
/// memory valid (and writable where the opcode writes back) for `opcode`
/// and `nr_args`.
pub unsafe fn io_uring_register(fd: u32, opcode: u32, arg: u64, nr_args: u32) -> i64 {
    // SAFETY: the caller vouches for `arg`; the kernel checks the rest.
    kernel_ret(unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            reg(fd),
            reg(opcode),
            arg,
            reg(nr_args),
        )
    })
}
