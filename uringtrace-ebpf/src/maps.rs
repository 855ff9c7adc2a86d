//! Every map the programs share with userspace.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use uringtrace_common::{
    counters,
    filter::{MAX_COMM_TGIDS, MAX_TRACED_TGIDS},
    request::MAX_TRACED_RINGS,
    summary::{
        CallStats, MAX_ERRNO_KEYS, MAX_TRACKED_REQUESTS, OP_SLOTS, RequestKey, RequestStart,
        SYSCALL_COUNT,
    },
    syscall::{EnterRecord, RegisterRecord, SetupRecord},
};

/// Records to userspace. Userspace sets the real size at load time
/// (`--buffer-size`); this default only has to be a valid power of two.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Per-CPU counters, indexed by `uringtrace_common::counters`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counters::COUNT, 0);

/// Thread groups to trace when FILTER_MODE is FILTER_TGIDS (plus the tids of
/// threads created by traced processes, see process_filter).
#[map]
pub static TRACED_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TRACED_TGIDS, 0);

/// Changes whenever TRACED_TGIDS may have changed (see process_filter's
/// per-CPU cache of the last answer).
#[map]
pub static FILTER_GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// The last thread group looked up in TRACED_TGIDS on this CPU, packed in
/// one word so that a program preempted while writing it (preemptible
/// kernels run tracing programs preemptibly) cannot leave half of it:
/// see process_filter::cache_key.
#[map]
pub static TGID_CACHE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Thread groups that passed `--comm` (see process_filter).
#[map]
pub static COMM_TGIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_COMM_TGIDS, 0);

/// Rings created by traced processes (ring pointer -> owner tgid), so that
/// their requests are traced when a kernel thread that is not one of the
/// owner's threads runs them (io-wq and SQPOLL before 5.12).
#[map]
pub static TRACED_RINGS: HashMap<u64, u32> = HashMap::with_max_entries(MAX_TRACED_RINGS, 0);

/// Calls between entry and exit, by thread id: the entry's arguments wait
/// here for the result, so each call is one record. A thread's slot stays
/// from its first call to its exit (see syscalls::begin), so the size
/// bounds the live threads that have made such a call.
const MAX_INFLIGHT: u32 = 16384;
#[map]
pub static INFLIGHT_ENTER: HashMap<u32, EnterRecord> = HashMap::with_max_entries(MAX_INFLIGHT, 0);
#[map]
pub static INFLIGHT_REGISTER: HashMap<u32, RegisterRecord> =
    HashMap::with_max_entries(MAX_INFLIGHT, 0);
#[map]
pub static INFLIGHT_SETUP: HashMap<u32, SetupRecord> = HashMap::with_max_entries(MAX_INFLIGHT, 0);

/// Summary mode aggregates, per CPU (see uringtrace_common::summary).
#[map]
pub static SYSCALL_STATS: PerCpuArray<CallStats> = PerCpuArray::with_max_entries(SYSCALL_COUNT, 0);
#[map]
pub static OP_STATS: PerCpuArray<CallStats> = PerCpuArray::with_max_entries(OP_SLOTS, 0);
/// Not preallocated: a preallocated per-CPU hash map allocates every
/// entry's per-CPU values when it is created, most of the start-up time of
/// all the maps together, for errnos of which a session sees a handful.
#[map]
pub static ERRNO_COUNTS: PerCpuHashMap<u32, u64> =
    PerCpuHashMap::with_max_entries(MAX_ERRNO_KEYS, BPF_F_NO_PREALLOC);
/// Summary mode's in-kernel join of submissions and CQEs. An entry stays
/// after its request's last CQE, marked finished, because the kernel
/// reuses its requests: the next submission at that address overwrites it
/// in place (a lookup) instead of an insert and a delete per request. The
/// LRU evicts the entries of addresses not reused; a request still in
/// flight that is evicted (more than MAX_TRACKED_REQUESTS at once) has its
/// CQE counted as unmatched, without latency.
#[map]
pub static REQUEST_STARTS: LruHashMap<RequestKey, RequestStart> =
    LruHashMap::with_max_entries(MAX_TRACKED_REQUESTS, 0);

#[inline(always)]
pub fn count(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // Per-CPU slot: no other writer can race with this one.
        unsafe { *slot += 1 };
    }
}
