//! A memory mapping of a file descriptor, unmapped when dropped: the
//! kernel's BTF (read-only, private) and the ring buffer's pages (shared).

use std::{io, os::fd::RawFd};

pub struct FdMapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping belongs to this value alone; what it holds is read
// or written only through the pointers its owners derive, as the kernel's
// protocol for that file says (plain bytes for BTF, atomics for the ring
// buffer's positions).
unsafe impl Send for FdMapping {}
// SAFETY: as above; `bytes` only reads.
unsafe impl Sync for FdMapping {}

impl FdMapping {
    /// `len` bytes of `fd` from `offset`, with `prot` and `flags` as for
    /// mmap(2).
    pub fn new(
        fd: RawFd,
        len: usize,
        prot: libc::c_int,
        flags: libc::c_int,
        offset: usize,
    ) -> io::Result<Self> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh mapping; nothing else in this process refers to
        // it, and the kernel checks the length and offset against the file.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, offset) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The mapped bytes (a readable mapping).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes at `ptr` until `drop` unmaps them.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for FdMapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
