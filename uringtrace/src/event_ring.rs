//! The BPF ring buffer (`EVENTS`), read in batches.
//!
//! aya's `RingBuf` publishes the consumer position after every record. The
//! programs read that position on every reserve (and again for the wakeup
//! mark), on the traced task's CPU, so every record moved the cache line
//! holding it from the tracer's CPU to the traced task's and back: a cache
//! miss in each program run and a contended store in the consumer. Here
//! the position is published once per [`PUBLISH_BYTES`] consumed and at the
//! end of each drain, which leaves the producer's view of free space at
//! most that far behind (a 64th of the default buffer).
//!
//! The layout and the protocol are the kernel's (`kernel/bpf/ringbuf.c`):
//! one read-write page holding the consumer position, then, read-only, a
//! page holding the producer position and the data pages mapped twice in a
//! row, so a record that wraps round the end is still contiguous. Each
//! record has an 8-byte header whose first word is its length with a busy
//! bit (reserved, not yet submitted) and a discard bit.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd, RawFd},
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use aya::maps::MapData;
use thiserror::Error;

use crate::fd_mapping::FdMapping;

/// `BPF_RINGBUF_BUSY_BIT`, `BPF_RINGBUF_DISCARD_BIT`, `BPF_RINGBUF_HDR_SZ`
/// (`include/uapi/linux/bpf.h`).
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER_LEN: usize = 8;

/// Consumed bytes after which the position is published even in the
/// middle of a drain: a drain of a full 16 MiB buffer must not hold all of
/// it from the producer until it ends. 128 KiB is ~1,000 records, so the
/// store and its cache-line transfer are paid once per thousand.
pub const PUBLISH_BYTES: u64 = 128 << 10;

#[derive(Debug, Error)]
pub enum EventRingError {
    #[error("the ring buffer map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("the ring buffer's size {0} is not a power of two of at least a page")]
    Size(u32),
    #[error("mapping the ring buffer's {what}: {source}")]
    Mmap {
        what: &'static str,
        source: io::Error,
    },
}

/// The consumer side of the ring buffer.
pub struct EventRing {
    /// Holds the map's fd open for the mappings and for polling.
    map: MapData,
    /// The consumer position's page (read-write).
    _consumer_page: FdMapping,
    /// The producer position's page, then the data pages twice (read-only).
    _producer_pages: FdMapping,
    reader: Reader,
}

// SAFETY: the mappings are owned by this value; the kernel is the only
// other party, through the atomics the reader uses.
unsafe impl Send for EventRing {}

impl EventRing {
    pub fn new(map: MapData) -> Result<Self, EventRingError> {
        let size = map.info()?.max_entries();
        // SAFETY: sysconf has no memory-safety preconditions.
        let page_size =
            usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if !size.is_power_of_two() || (size as usize) < page_size {
            return Err(EventRingError::Size(size));
        }
        let fd = map.fd().as_fd().as_raw_fd();
        let map_part = |len, prot, offset, what| {
            FdMapping::new(fd, len, prot, libc::MAP_SHARED, offset)
                .map_err(|source| EventRingError::Mmap { what, source })
        };
        let consumer_page = map_part(
            page_size,
            libc::PROT_READ | libc::PROT_WRITE,
            0,
            "consumer page",
        )?;
        let producer_pages = map_part(
            page_size + 2 * size as usize,
            libc::PROT_READ,
            page_size,
            "producer and data pages",
        )?;
        // SAFETY: the kernel's layout (see the module's comment), in
        // mappings that live as long as the reader.
        let reader = unsafe {
            Reader::new(
                consumer_page.as_ptr().cast(),
                producer_pages.as_ptr().cast(),
                producer_pages.as_ptr().add(page_size),
                size,
            )
        };
        Ok(Self {
            map,
            _consumer_page: consumer_page,
            _producer_pages: producer_pages,
            reader,
        })
    }

    /// Hands every record submitted so far to `each`, in order, and
    /// returns how many: those before the producer's position at the start
    /// (not the ones that come while it runs). Stops at the first record
    /// still being written (another CPU's reservation may still be open)
    /// and at `each`'s first error, which it returns after publishing what
    /// was consumed before.
    pub fn drain<E>(&mut self, each: impl FnMut(&[u8]) -> Result<(), E>) -> Result<usize, E> {
        self.reader.drain(each)
    }
}

/// The reading protocol, over memory laid out as the kernel maps it.
struct Reader {
    consumer_pos: *const AtomicU64,
    producer_pos: *const AtomicU64,
    /// The data pages, twice in a row.
    data: *const u8,
    mask: u64,
    /// Where the next record starts.
    position: u64,
    /// The position the kernel last saw.
    published: u64,
}

impl Reader {
    /// # Safety
    /// `consumer_pos` and `producer_pos` point to 8-byte aligned positions
    /// and `data` to `2 * size` readable bytes, all valid while the reader
    /// lives, with the kernel's ring-buffer layout in `data`.
    unsafe fn new(
        consumer_pos: *const AtomicU64,
        producer_pos: *const AtomicU64,
        data: *const u8,
        size: u32,
    ) -> Self {
        // SAFETY: the caller's.
        let position = unsafe { &*consumer_pos }.load(Ordering::Acquire);
        Self {
            consumer_pos,
            producer_pos,
            data,
            mask: u64::from(size) - 1,
            position,
            published: position,
        }
    }

    /// The record header at the current position, and where its data
    /// starts.
    fn header(&self) -> (u32, *const u8) {
        let at = (self.position & self.mask) as usize;
        // SAFETY: `at` + 8 is within the first copy of the data pages, and
        // the header is 8-byte aligned (records are rounded up to 8).
        let header = unsafe { &*self.data.add(at).cast::<AtomicU32>() };
        // Acquire pairs with the kernel's commit (an xchg that clears the
        // busy bit): the record's bytes are visible once the bit is seen
        // clear.
        let len = header.load(Ordering::Acquire);
        // SAFETY: as above.
        (len, unsafe { self.data.add(at + HEADER_LEN) })
    }

    fn producer(&self) -> u64 {
        // SAFETY: valid while the reader lives (`new`'s contract).
        unsafe { &*self.producer_pos }.load(Ordering::Acquire)
    }

    fn publish(&mut self) {
        if self.published != self.position {
            // Release: the kernel may reuse the space once it sees this,
            // so every read of it must come before.
            // SAFETY: valid while the reader lives (`new`'s contract).
            unsafe { &*self.consumer_pos }.store(self.position, Ordering::Release);
            self.published = self.position;
        }
    }

    fn drain<E>(&mut self, mut each: impl FnMut(&[u8]) -> Result<(), E>) -> Result<usize, E> {
        let mut count = 0;
        // Up to where the producer is now, not after it: under a stream
        // faster than the consumer, chasing it would never return, and the
        // session's timers, signals and end would wait for the stream to
        // stop. What comes meanwhile is the next drain's.
        let producer = self.producer();
        loop {
            if self.position == producer {
                self.publish();
                return Ok(count);
            }
            let (header, data) = self.header();
            if header & BUSY_BIT != 0 {
                self.publish();
                return Ok(count);
            }
            let len = (header & !(BUSY_BIT | DISCARD_BIT)) as usize;
            let next = self.position + (HEADER_LEN + len).next_multiple_of(8) as u64;
            if header & DISCARD_BIT == 0 {
                // SAFETY: the record's `len` bytes follow its header; with
                // the data pages twice in a row they are contiguous even
                // where they wrap round the end, and the kernel does not
                // reuse them before the published position passes them.
                let record = unsafe { std::slice::from_raw_parts(data, len) };
                prefetch_ahead(record);
                count += 1;
                if let Err(err) = each(record) {
                    self.position = next;
                    self.publish();
                    return Err(err);
                }
            }
            self.position = next;
            if self.position - self.published >= PUBLISH_BYTES {
                self.publish();
            }
        }
    }
}

/// Asks for the records after `record` to be fetched while it is decoded:
/// they were written on the traced task's CPU, and reading each for the
/// first time waited for its cache lines to come across (most of the time
/// the request tracker took, in a profile of a NOP storm). A prefetch never
/// faults, so addresses past the end of the mapping are harmless.
#[inline(always)]
fn prefetch_ahead(record: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let at = record.as_ptr();
        for ahead in [256, 320, 384, 448] {
            // SAFETY: _mm_prefetch takes any address; it does not read
            // memory the program can observe.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(ahead).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = record;
}

impl AsRawFd for EventRing {
    fn as_raw_fd(&self) -> RawFd {
        self.map.fd().as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory laid out as the kernel maps a ring buffer of `size` bytes,
    /// with a producer that writes records the way bpf_ringbuf_reserve
    /// and bpf_ringbuf_submit do.
    struct FakeRing {
        consumer: Box<AtomicU64>,
        producer: Box<AtomicU64>,
        /// The data pages twice (u64s for alignment), owned by `base`:
        /// written and read through it alone.
        _data: Vec<u64>,
        base: *mut u8,
        size: usize,
    }

    impl FakeRing {
        fn new(size: usize) -> Self {
            let mut data = vec![0u64; 2 * size / 8];
            let base = data.as_mut_ptr().cast();
            Self {
                consumer: Box::new(AtomicU64::new(0)),
                producer: Box::new(AtomicU64::new(0)),
                _data: data,
                base,
                size,
            }
        }

        fn reader(&self) -> Reader {
            // SAFETY: the fake outlives every reader in these tests.
            unsafe {
                Reader::new(
                    &*self.consumer,
                    &*self.producer,
                    self.base,
                    self.size as u32,
                )
            }
        }

        /// Writes ring byte `at` (taken modulo the size) in both copies.
        fn poke(&mut self, at: u64, byte: u8) {
            let r = (at as usize) & (self.size - 1);
            // SAFETY: r + size < 2 * size, the data's length.
            unsafe {
                self.base.add(r).write(byte);
                self.base.add(r + self.size).write(byte);
            }
        }

        /// Appends a record with `payload` and header `flags`; returns
        /// where its header is.
        fn push(&mut self, payload: &[u8], flags: u32) -> u64 {
            let at = self.producer.load(Ordering::Relaxed);
            let header = (payload.len() as u32 | flags).to_ne_bytes();
            for (i, &b) in header.iter().chain(&[0u8; 4]).chain(payload).enumerate() {
                self.poke(at + i as u64, b);
            }
            let next = at + (HEADER_LEN + payload.len()).next_multiple_of(8) as u64;
            self.producer.store(next, Ordering::Release);
            at
        }

        /// Clears the busy bit of the record whose header is at `at`.
        fn commit(&mut self, at: u64) {
            let r = (at as usize) & (self.size - 1);
            // SAFETY: within the data (the header's high byte).
            let old = unsafe { self.base.add(r + 3).read() };
            self.poke(at + 3, old & !0x80);
        }

        fn consumed(&self) -> u64 {
            self.consumer.load(Ordering::Acquire)
        }
    }

    fn collect(reader: &mut Reader) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        let n = reader
            .drain(|r| {
                seen.push(r.to_vec());
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(n, seen.len());
        seen
    }

    #[test]
    fn records_in_order_discarded_skipped_and_a_busy_one_ends_the_drain() {
        let mut ring = FakeRing::new(4096);
        ring.push(b"first", 0);
        ring.push(b"thrown away", DISCARD_BIT);
        let third = ring.push(b"third record", 0);
        let busy = ring.push(b"not yet", BUSY_BIT);
        ring.push(b"after it", 0);
        let mut reader = ring.reader();
        assert_eq!(
            collect(&mut reader),
            [b"first".to_vec(), b"third record".to_vec()]
        );
        // Everything before the busy record is given back, nothing after.
        assert_eq!(ring.consumed(), busy);
        assert!(busy > third);
        ring.commit(busy);
        assert_eq!(
            collect(&mut reader),
            [b"not yet".to_vec(), b"after it".to_vec()]
        );
        assert_eq!(ring.consumed(), ring.producer.load(Ordering::Relaxed));
        assert!(collect(&mut reader).is_empty());
    }

    #[test]
    fn a_record_that_wraps_round_the_end_comes_whole() {
        let mut ring = FakeRing::new(256);
        let mut reader = ring.reader();
        // 48 bytes each: the sixth starts at 240 and ends at 288.
        for round in 0u8..12 {
            let payload = [round; 40];
            let at = ring.push(&payload, 0);
            let seen = collect(&mut reader);
            assert_eq!(seen, [payload.to_vec()], "record at {at}");
            assert_eq!(ring.consumed(), at + 48);
        }
    }

    #[test]
    fn the_position_is_published_every_publish_bytes_and_at_the_end() {
        let size = 4 * PUBLISH_BYTES as usize;
        let mut ring = FakeRing::new(size);
        let payload = [7u8; 120];
        let records = (PUBLISH_BYTES as usize * 5 / 2) / 128;
        for _ in 0..records {
            ring.push(&payload, 0);
        }
        let mut reader = ring.reader();
        let consumer = &*ring.consumer as *const AtomicU64;
        let mut seen_published = Vec::new();
        let mut index = 0u64;
        reader
            .drain(|_| {
                // SAFETY: the fake lives until the end of the test.
                let published = unsafe { &*consumer }.load(Ordering::Acquire);
                // Before record `index` is taken, all before it is
                // consumed; what the kernel sees lags by less than
                // PUBLISH_BYTES.
                let consumed = index * 128;
                assert!(
                    consumed - published < PUBLISH_BYTES,
                    "{consumed} {published}"
                );
                seen_published.push(published);
                index += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(index as usize, records);
        seen_published.dedup();
        // 0, then each PUBLISH_BYTES: a store per ~1,000 records, not per record.
        assert_eq!(seen_published, [0, PUBLISH_BYTES, 2 * PUBLISH_BYTES]);
        assert_eq!(ring.consumed(), records as u64 * 128);
    }

    #[test]
    fn records_submitted_during_a_drain_wait_for_the_next() {
        let mut ring = FakeRing::new(4096);
        ring.push(b"before", 0);
        let mut reader = ring.reader();
        let ring_ptr: *mut FakeRing = &mut ring;
        let mut seen = Vec::new();
        let n = reader
            .drain(|r| {
                seen.push(r.to_vec());
                // SAFETY: the fake outlives the drain; the reader reads
                // only what the producer position covered at its start.
                unsafe { (*ring_ptr).push(b"during", 0) };
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(seen, [b"before".to_vec()]);
        assert_eq!(collect(&mut reader), [b"during".to_vec()]);
    }

    #[test]
    fn an_error_stops_the_drain_after_its_record() {
        let mut ring = FakeRing::new(4096);
        for name in [&b"one"[..], b"two", b"three"] {
            ring.push(name, 0);
        }
        let mut reader = ring.reader();
        let mut seen = Vec::new();
        let result = reader.drain(|r| {
            seen.push(r.to_vec());
            if r == b"two" {
                Err("bad record")
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err("bad record"));
        assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(ring.consumed(), 32);
        assert_eq!(collect(&mut reader), [b"three".to_vec()]);
    }
}
