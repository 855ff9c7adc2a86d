//! Page-aligned anonymous memory, for what the kernel wants aligned or
//! pins: registered buffers, user-memory regions.

use anyhow::{bail, ensure};

pub struct Pages {
    ptr: *mut u8,
    len: usize,
}

impl Pages {
    pub fn page_size() -> usize {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap_or(4096)
    }

    /// `count` zeroed, readable and writable pages.
    pub fn new(count: usize) -> anyhow::Result<Self> {
        let len = count * Self::page_size();
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            bail!("mmap of {len} bytes: {}", std::io::Error::last_os_error());
        }
        Ok(Self {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Address of the byte at `offset`, as the kernel takes it.
    pub fn addr(&self, offset: usize) -> u64 {
        self.ptr.wrapping_add(offset) as u64
    }

    /// Stores `value` at `offset`.
    pub fn write<T: Copy>(&mut self, offset: usize, value: T) -> anyhow::Result<()> {
        ensure!(
            offset
                .checked_add(size_of::<T>())
                .is_some_and(|end| end <= self.len),
            "write of {} bytes at {offset} past {} bytes",
            size_of::<T>(),
            self.len
        );
        ensure!(
            offset.is_multiple_of(align_of::<T>()),
            "misaligned write at {offset}"
        );
        // SAFETY: in bounds and aligned (checked above), and the mapping is
        // ours and writable.
        unsafe { self.ptr.add(offset).cast::<T>().write(value) };
        Ok(())
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made. Pages the kernel
        // pinned stay alive through its own references.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
