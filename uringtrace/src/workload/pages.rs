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

    /// The `len` bytes at `offset`, as last written by us or the kernel.
    pub fn bytes(&self, offset: usize, len: usize) -> anyhow::Result<&[u8]> {
        self.check_range(offset, len)?;
        // SAFETY: in bounds (checked above), and the mapping is ours and
        // readable; the kernel writes it only while a request the caller
        // has reaped was in flight.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr.add(offset), len) })
    }

    /// Copies `data` to `offset`.
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) -> anyhow::Result<()> {
        self.check_range(offset, data.len())?;
        // SAFETY: in bounds (checked above), and the mapping is ours and
        // writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(offset), data.len()) };
        Ok(())
    }

    fn check_range(&self, offset: usize, len: usize) -> anyhow::Result<()> {
        ensure!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "{len} bytes at {offset} past {} bytes",
            self.len
        );
        Ok(())
    }

    /// Stores `value` at `offset`.
    pub fn write<T: Copy>(&mut self, offset: usize, value: T) -> anyhow::Result<()> {
        self.check_range(offset, size_of::<T>())?;
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
