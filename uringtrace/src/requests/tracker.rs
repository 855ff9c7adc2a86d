//! Follows every request from submission to its last CQE: assigns ring and
//! request ids, joins each event to its request by the kernel's request
//! identity (user_data repeats; the `req` pointer is unique while the
//! request lives), and derives latency and the path the request took.
//!
//! The tables are bounded: the oldest requests are evicted, and every
//! request that leaves without a CQE is counted, so a torn-down ring or a
//! long session cannot grow them without limit.

use std::{collections::VecDeque, rc::Rc, sync::Arc};

// Looked up several times per event, where SipHash took 4% of the consumer.
use crate::fasthash::{FastMap as HashMap, FastSet as HashSet};

use uringtrace_common::{
    HDR_IO_WORKER, HDR_TASK_FLAGS_READ, RecordHeader, RecordKind,
    issue::{ISSUE_HOOKS, IssueRecord},
    request::{RequestTracepoint, TracepointRecord},
    request_object::{ObjectRecord, shape_of},
};

use super::{
    event::{
        Completion, CredsInfo, FailedSqe, IORING_SETUP_CQE32, Match, ObjectInfo, Paths,
        RequestDetail, RequestEvent, RequestObject, RequestRef, RingRef, Worker,
    },
    layout::{F, RequestFormats, TracepointFields},
    object::{ObjectSupport, creds_of_record},
};
use crate::event::{Comm, Event, RecordError, Task, read_pod};

/// IORING_CQE_F_MORE: more CQEs will follow for this request.
const CQE_F_MORE: u32 = 1 << 1;
/// IORING_CQE_F_NOTIF: a zero-copy send's buffer notification, posted by a
/// request of its own that was never submitted.
const CQE_F_NOTIF: u32 = 1 << 3;
/// IOSQE_CQE_SKIP_SUCCESS: no CQE when the request succeeds.
const IOSQE_CQE_SKIP_SUCCESS: u8 = 1 << 6;
/// The low byte of the kernel's REQ_F_* flags holds the SQE's IOSQE_* bits.
const SQE_FLAGS_MASK: u64 = 0xff;

/// Default bound on requests followed at once.
pub const MAX_PENDING: usize = 1 << 18;
/// Bound on rings remembered.
const MAX_RINGS: usize = 1 << 16;
/// Objects waiting for their submission.
const OBJECTS_KEPT: usize = 4096;
/// Finished requests remembered for the events that follow their last CQE
/// (a broken chain's fail_link comes after the failed request's CQE).
const RECENT: usize = 1024;

type Key = (u64, u64);

#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    object: Option<ObjectInfo>,
    creds: Option<CredsInfo>,
    /// Its object record was merged (it is not taken twice).
    object_record: bool,
    user_data: u64,
    opcode: Option<u8>,
    sqe_flags: Option<u8>,
    submit_ts: u64,
    paths: Paths,
    cqes: u32,
}

impl Pending {
    fn reference(&self) -> RequestRef {
        RequestRef {
            id: Some(self.id),
            user_data: self.user_data,
            opcode: self.opcode,
            sqe_flags: self.sqe_flags,
        }
    }
}

/// How requests left the tracker other than by a terminal CQE.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrackerStats {
    /// Evicted to keep the table bounded.
    pub evicted: u64,
    /// Ended without a CQE because of IOSQE_CQE_SKIP_SUCCESS (seen when the
    /// kernel reused the request).
    pub skipped_cqe: u64,
    /// Reused by the kernel without a terminal CQE traced.
    pub vanished: u64,
    /// In flight when their ring's address was given to a new ring.
    pub ring_gone: u64,
    /// CQEs with no submission seen.
    pub unmatched: u64,
    /// Issues of a request already submitted (io-wq or poll retries), seen
    /// by the kprobe submit path and not shown.
    pub reissued: u64,
}

pub struct Tracker {
    formats: Rc<RequestFormats>,
    rings: HashMap<u64, RingRef>,
    next_ring: u32,
    pending: HashMap<Key, Pending>,
    /// (ring, user_data) -> requests in submission order, for CQEs posted
    /// without a request pointer. Entries of finished requests are dropped
    /// lazily; emptied queues are kept for the next request with that
    /// user_data (applications reuse a few: slot indexes) and swept when
    /// they pile up. Only the rings of `user_data_rings` are entered.
    by_user_data: HashMap<Key, VecDeque<(u64, u64)>>,
    /// The rings that have needed `by_user_data`: a CQE without a request
    /// pointer (multishot, overflow) or, before 5.13, any event. The index
    /// of a ring is built from its live requests when it is first needed
    /// and kept from then on; a ring whose CQEs all name their request (a
    /// NOP storm, most rings on 5.13+) never pays for it, where keeping it
    /// for every request was two of the consumer's hash-table updates per
    /// request.
    user_data_rings: HashSet<u64>,
    /// Submission order, for eviction; stale entries dropped lazily.
    order: VecDeque<(Key, u64)>,
    recent: HashMap<Key, RequestRef>,
    recent_order: VecDeque<(Key, Option<u64>)>,
    next_id: u64,
    max_pending: usize,
    /// Objects read before their submission arrived, by (ring, request).
    objects: HashMap<Key, Arrived>,
    objects_order: VecDeque<Key>,
    /// Why objects are not decoded in this session, if they are not.
    objects_missing: Option<Arc<str>>,
    /// REQ_F_CREDS in the submission's request flags, when BTF names it.
    creds_mask: Option<u64>,
    /// Why the credentials of requests under a personality are unknown.
    creds_missing: Option<Arc<str>>,
    /// The submission just processed whose object record has not come yet
    /// (its hook runs after the submit tracepoint's own): the decoder holds
    /// that event back for the next record.
    awaiting_object: Option<Key>,
    /// The io_uring thread the event being processed ran on.
    worker: Option<Worker>,
    pub stats: TrackerStats,
}

impl Tracker {
    /// `objects`: what the session's object program reads (and why not,
    /// with no BTF or a tp_btf program refused).
    pub fn new(formats: RequestFormats, max_pending: usize, objects: ObjectSupport) -> Self {
        Self {
            formats: Rc::new(formats),
            rings: HashMap::default(),
            next_ring: 1,
            pending: HashMap::default(),
            by_user_data: HashMap::default(),
            user_data_rings: HashSet::default(),
            order: VecDeque::new(),
            recent: HashMap::default(),
            recent_order: VecDeque::new(),
            next_id: 1,
            max_pending: max_pending.max(1),
            objects: HashMap::default(),
            objects_order: VecDeque::new(),
            objects_missing: objects.missing.map(Arc::from),
            creds_mask: objects.creds_mask,
            creds_missing: objects.creds_missing.map(Arc::from),
            awaiting_object: None,
            worker: None,
            stats: TrackerStats::default(),
        }
    }

    /// Requests submitted and not yet finished.
    /// Requests submitted and not finished: (all, those with
    /// IOSQE_CQE_SKIP_SUCCESS, which post no CQE when they succeed and so
    /// only leave the table when the kernel reuses them).
    pub fn in_flight(&self) -> (usize, usize) {
        let skip = self
            .pending
            .values()
            .filter(|p| p.sqe_flags.is_some_and(|f| f & IOSQE_CQE_SKIP_SUCCESS != 0))
            .count();
        (self.pending.len(), skip)
    }

    /// Requests in flight per ring id (for `uringtrace top`).
    pub fn in_flight_by_ring(&self) -> std::collections::BTreeMap<u32, usize> {
        let mut by_ring = std::collections::BTreeMap::new();
        for (ring, _) in self.pending.keys() {
            if let Some(r) = self.rings.get(ring) {
                *by_ring.entry(r.id).or_default() += 1;
            }
        }
        by_ring
    }

    /// Takes a request's object record: kept for its submission, which
    /// normally comes next (or attached to it, if it came first).
    /// Returns what it adds when its submission was already processed (the
    /// decoder then completes the submit event it held back).
    pub fn object(&mut self, bytes: &[u8]) -> Result<Option<Late>, RecordError> {
        let r: ObjectRecord = read_pod(bytes, RecordKind::RequestObject as u16)?;
        let key = (r.ring, r.req);
        let arrived = Arrived {
            object: RequestObject::of_record(&r).map(Box::new),
            creds: creds_of_record(&r).map(|c| match c {
                Ok(c) => CredsInfo::Read(c),
                Err(fault) => self.creds_unread(fault),
            }),
        };
        if let Some(p) = self.pending.get_mut(&key)
            && !p.object_record
        {
            p.object_record = true;
            let late = Late {
                object: arrived.object.map(ObjectInfo::Decoded),
                creds: arrived.creds,
            };
            if late.object.is_some() {
                p.object.clone_from(&late.object);
            }
            if late.creds.is_some() {
                p.creds.clone_from(&late.creds);
            }
            return Ok((self.awaiting_object.take() == Some(key)).then_some(late));
        }
        if self.objects.insert(key, arrived).is_none() {
            self.objects_order.push_back(key);
        }
        // Objects whose submission never came (filtered out by --ops in
        // the submit program, lost): keep the table small.
        while self.objects_order.len() > OBJECTS_KEPT {
            if let Some(old) = self.objects_order.pop_front() {
                self.objects.remove(&old);
            }
        }
        Ok(None)
    }

    /// Whether the event just returned by [`Tracker::process`] is a
    /// submission whose object record is still to come.
    pub fn take_awaiting_object(&mut self) -> bool {
        self.awaiting_object.is_some()
    }

    /// The object record of the held submission did not come next.
    pub fn object_never_came(&mut self) {
        self.awaiting_object = None;
    }

    /// Decodes one io_uring tracepoint record and updates the tables.
    ///
    /// Returns the event whole: built once, in the caller's slot. Built in
    /// parts and moved together, a ~250-byte event was copied by memcpy
    /// four or five times between here and the formatter.
    pub fn process(
        &mut self,
        header: &RecordHeader,
        kind: RecordKind,
        bytes: &[u8],
    ) -> Result<Event, RecordError> {
        let tp = RequestTracepoint::by_kind(kind).ok_or(RecordError::Kind(header.kind))?;
        let (ring_owner, raw) = raw_part(tp, header.kind, bytes)?;
        let formats = Rc::clone(&self.formats);
        // The format is known for every tracepoint we attached.
        let Some(fields) = formats.get(tp) else {
            return Err(RecordError::Kind(header.kind));
        };
        let comm = Comm::from_kernel(&header.comm);
        let worker = worker_of(header, &comm);
        let ring_ptr = (kind != RecordKind::TaskWorkRun)
            .then(|| fields.get(raw, F::Ctx))
            .flatten();
        let ts = header.ts_ns;
        self.worker = worker;
        let pid = if ring_owner != 0 {
            ring_owner
        } else {
            header.pid
        };
        if kind == RecordKind::RingCreate {
            // The ring is made by the event itself: its detail first.
            let detail = self.detail(kind, fields, raw, ring_ptr, ts);
            if let Some(r) = ring_ptr.and_then(|p| self.rings.get_mut(&p)) {
                r.owner = Some(pid);
            }
            let ring = ring_ptr.map(|p| self.ring(p));
            return Ok(Event::Request(RequestEvent {
                task: task(header, comm, owned_by(worker, ring, pid)),
                worker,
                ring,
                detail,
            }));
        }
        // Every other kind leaves the ring table alone: the ring first, and
        // the detail last, written straight into the returned event.
        let ring = ring_ptr.map(|p| self.ring(p));
        Ok(Event::Request(RequestEvent {
            task: task(header, comm, owned_by(worker, ring, pid)),
            worker,
            ring,
            detail: self.detail(kind, fields, raw, ring_ptr, ts),
        }))
    }

    /// [`Self::process`], for tests that look at the request event.
    #[cfg(test)]
    fn process_request(
        &mut self,
        header: &RecordHeader,
        kind: RecordKind,
        bytes: &[u8],
    ) -> Result<RequestEvent, RecordError> {
        match self.process(header, kind, bytes)? {
            Event::Request(e) => Ok(e),
            Event::Syscall(_) => unreachable!("a request record"),
        }
    }

    /// One issue of a request, from the kprobe submit path: its submission
    /// the first time; `None` for a re-issue of a request still in flight
    /// (io-wq retry after -EAGAIN, poll-driven retry), which is counted.
    /// A request address reused for a new request is told from a re-issue
    /// by its user_data and opcode; a reused address with the same ones,
    /// whose previous request ended without a traced CQE
    /// (IOSQE_CQE_SKIP_SUCCESS), is taken for a re-issue.
    pub fn issue(
        &mut self,
        header: &RecordHeader,
        bytes: &[u8],
    ) -> Result<Option<RequestEvent>, RecordError> {
        let r: IssueRecord = read_pod(bytes, RecordKind::Issue as u16)?;
        let comm = Comm::from_kernel(&header.comm);
        let worker = worker_of(header, &comm);
        self.worker = worker;
        let key = (r.ring, r.req);
        if let Some(p) = self.pending.get_mut(&key)
            && p.user_data == r.user_data
            && p.opcode == Some(r.opcode)
        {
            if worker == Some(Worker::IoWq) {
                p.paths.insert(Paths::ASYNC);
            }
            self.stats.reissued += 1;
            return Ok(None);
        }
        let request = self.submitted(
            r.ring,
            Some(r.req),
            r.user_data,
            Some(r.opcode),
            Some((r.req_flags & SQE_FLAGS_MASK) as u8),
            header.ts_ns,
        );
        // Forced async requests are first issued by an io-wq worker, after
        // their queue_async_work event (which came before the request was
        // known here).
        if worker == Some(Worker::IoWq)
            && let Some(p) = self.pending.get_mut(&key)
        {
            p.paths.insert(Paths::ASYNC);
        }
        let (object, creds) = self.submitted_object(r.ring, Some(r.req), r.opcode, r.req_flags);
        let sq_thread = match r.sq_thread {
            0 => false,
            1 => true,
            _ => self.rings.get(&r.ring).and_then(|g| g.sqpoll()) == Some(true),
        };
        let hook = ISSUE_HOOKS
            .get(usize::from(r.hook))
            .map_or("kprobe:?", |h| h.hook_name);
        let detail = RequestDetail::Submit {
            request,
            req_flags: r.req_flags,
            sq_thread,
            force_nonblock: None,
            object,
            creds,
            hook: Some(hook),
        };
        let pid = if r.ring_owner != 0 {
            r.ring_owner
        } else {
            header.pid
        };
        Ok(Some(self.event(
            header,
            comm,
            worker,
            Some(r.ring),
            pid,
            detail,
        )))
    }

    fn event(
        &mut self,
        header: &RecordHeader,
        comm: Comm,
        worker: Option<Worker>,
        ring_ptr: Option<u64>,
        pid: u32,
        detail: RequestDetail,
    ) -> RequestEvent {
        let ring = ring_ptr.map(|p| self.ring(p));
        RequestEvent {
            task: task(header, comm, owned_by(worker, ring, pid)),
            worker,
            ring,
            detail,
        }
    }

    // ring, submitted_object, submitted and completed are inlined into
    // process: called, each returned its struct through memory written
    // field by field, and process read it back in 16-byte moves that
    // spanned several of those writes, which the CPU cannot forward from
    // its store buffer (the three largest stalls in the consumer's
    // profile).
    #[inline(always)]
    fn ring(&mut self, ptr: u64) -> RingRef {
        if let Some(r) = self.rings.get(&ptr) {
            return *r;
        }
        let r = RingRef {
            id: self.take_ring_id(),
            fd: None,
            owner: None,
            setup_flags: None,
        };
        self.insert_ring(ptr, r);
        r
    }

    fn take_ring_id(&mut self) -> u32 {
        let id = self.next_ring;
        self.next_ring = self.next_ring.wrapping_add(1);
        id
    }

    fn insert_ring(&mut self, ptr: u64, ring: RingRef) {
        if self.rings.len() >= MAX_RINGS && !self.rings.contains_key(&ptr) {
            // Rare (tens of thousands of live rings): forget the oldest.
            if let Some(oldest) = self.rings.iter().min_by_key(|(_, r)| r.id).map(|(p, _)| *p) {
                self.rings.remove(&oldest);
                // Its user_data index goes with it, whole (made again if it
                // is needed again): `user_data_rings` stays within the
                // rings known.
                if self.user_data_rings.remove(&oldest) {
                    self.by_user_data.retain(|(r, _), _| *r != oldest);
                }
            }
        }
        self.rings.insert(ptr, ring);
    }

    // Inlined into `process`, the detail is written straight into the
    // returned event (returned, it was one more copy).
    #[inline(always)]
    fn detail(
        &mut self,
        kind: RecordKind,
        f: &TracepointFields,
        raw: &[u8],
        ring: Option<u64>,
        ts: u64,
    ) -> RequestDetail {
        let ring = ring.unwrap_or(0);
        let u = |field| f.u64(raw, field);
        let i32_of = |field| f.u64(raw, field) as i32;
        match kind {
            RecordKind::RingCreate => {
                let fd = i32_of(F::Fd);
                let flags = u(F::Flags) as u32;
                self.ring_created(ring, fd, flags);
                RequestDetail::RingCreate {
                    fd,
                    sq_entries: u(F::SqEntries) as u32,
                    cq_entries: u(F::CqEntries) as u32,
                    flags,
                }
            }
            RecordKind::RingRegister => RequestDetail::RingRegister {
                opcode: u(F::Opcode) as u32,
                nr_files: u(F::NrFiles) as u32,
                nr_bufs: u(F::NrBufs) as u32,
                ret: u(F::Ret) as i64,
            },
            RecordKind::Submit => {
                let req_flags = u(F::Flags);
                let req = f.get(raw, F::Req);
                let opcode = u(F::Opcode) as u8;
                let request = self.submitted(
                    ring,
                    req,
                    u(F::UserData),
                    Some(opcode),
                    Some((req_flags & SQE_FLAGS_MASK) as u8),
                    ts,
                );
                let (object, creds) = self.submitted_object(ring, req, opcode, req_flags);
                RequestDetail::Submit {
                    request,
                    req_flags,
                    sq_thread: u(F::SqThread) != 0,
                    force_nonblock: f.get(raw, F::ForceNonblock).map(|v| v != 0),
                    object,
                    creds,
                    hook: None,
                }
            }
            RecordKind::ReqFailed => {
                let sqe = FailedSqe {
                    opcode: u(F::Opcode) as u8,
                    flags: u(F::Flags) as u8,
                    ioprio: u(F::Ioprio) as u8,
                    off: u(F::Off),
                    addr: u(F::Addr),
                    len: u(F::Len) as u32,
                    op_flags: u(F::OpFlags) as u32,
                    buf_index: u(F::BufIndex) as u16,
                    personality: u(F::Personality) as u16,
                    file_index: u(F::FileIndex) as u32,
                    addr3: u(F::Addr3),
                };
                // It never reaches submit_req, but its CQE (with the error)
                // still comes: it is tracked like a submission.
                let request = self.submitted(
                    ring,
                    f.get(raw, F::Req),
                    u(F::UserData),
                    Some(sqe.opcode),
                    Some(sqe.flags),
                    ts,
                );
                RequestDetail::Failed {
                    request,
                    sqe,
                    error: i32_of(F::Error),
                }
            }
            RecordKind::Complete => {
                let cflags = f.get(raw, F::Cflags).map(|v| v as u32);
                let extra = self.extra_words(ring, f, raw);
                RequestDetail::Complete(self.completed(
                    ring,
                    f.get(raw, F::Req).filter(|&r| r != 0),
                    u(F::UserData),
                    i32_of(F::Res),
                    cflags,
                    extra,
                    false,
                    ts,
                ))
            }
            RecordKind::CqeOverflow => {
                let cflags = f.get(raw, F::Cflags).map(|v| v as u32);
                let lost = f.get(raw, F::Ocqe) == Some(0);
                RequestDetail::CqeOverflow(self.completed(
                    ring,
                    None,
                    u(F::UserData),
                    i32_of(F::Res),
                    cflags,
                    None,
                    lost,
                    ts,
                ))
            }
            RecordKind::QueueAsyncWork => RequestDetail::Async {
                request: self.on_path(ring, f, raw, Paths::ASYNC),
                req_flags: u(F::Flags),
                hashed: f.get(raw, F::Rw).map(|v| v != 0),
            },
            RecordKind::PollArm => RequestDetail::PollArm {
                request: self.on_path(ring, f, raw, Paths::POLL),
                mask: i32_of(F::Mask),
                events: i32_of(F::Events),
            },
            RecordKind::TaskAdd => RequestDetail::TaskAdd {
                request: self.on_path(ring, f, raw, Paths::TASK_WORK),
                mask: i32_of(F::Mask),
            },
            RecordKind::Defer => RequestDetail::Defer {
                request: self.on_path(ring, f, raw, Paths::DEFERRED),
            },
            RecordKind::FileGet => RequestDetail::FileGet {
                request: self.on_path(ring, f, raw, Paths::default()),
                fd: i32_of(F::Fd),
            },
            RecordKind::Link => {
                let request = self.on_path(ring, f, raw, Paths::LINKED);
                let target = f
                    .get(raw, F::TargetReq)
                    .and_then(|t| self.known((ring, t), Paths::LINKED));
                RequestDetail::Link { request, target }
            }
            RecordKind::FailLink => {
                let request = self.on_path(ring, f, raw, Paths::default());
                let next = f.get(raw, F::Link).and_then(|l| {
                    let key = if f.has(F::Ctx) {
                        Some((ring, l))
                    } else {
                        self.key_of_request(l)
                    };
                    key.and_then(|k| self.known(k, Paths::default()))
                });
                RequestDetail::FailLink { request, next }
            }
            RecordKind::CqringWait => RequestDetail::CqringWait {
                min_events: i32_of(F::MinEvents),
            },
            RecordKind::TaskWorkRun => RequestDetail::TaskWorkRun {
                count: u(F::Count) as u32,
                loops: f.get(raw, F::Loops).map(|v| v as u32),
            },
            RecordKind::LocalWorkRun => RequestDetail::LocalWorkRun {
                count: i32_of(F::Count),
                loops: u(F::Loops) as u32,
            },
            RecordKind::ShortWrite => RequestDetail::ShortWrite {
                fpos: u(F::Fpos),
                wanted: u(F::Wanted),
                got: u(F::Got),
            },
            RecordKind::Setup
            | RecordKind::Enter
            | RecordKind::Register
            | RecordKind::RequestObject
            | RecordKind::Issue => {
                unreachable!("system call records are not routed here")
            }
        }
    }

    /// Why a request's credentials were not read although it runs under a
    /// personality: this kernel's BTF, or else the read's own failure.
    fn creds_unread(&self, fault: &'static str) -> CredsInfo {
        CredsInfo::Missing(
            self.creds_missing
                .clone()
                .unwrap_or_else(|| Arc::from(fault)),
        )
    }

    /// The object of a request just submitted, for the opcodes that have
    /// one, and the credentials it runs under when it names a personality
    /// (both moved onto its pending entry for its last CQE).
    #[inline(always)]
    fn submitted_object(
        &mut self,
        ring: u64,
        req: Option<u64>,
        opcode: u8,
        req_flags: u64,
    ) -> (Option<ObjectInfo>, Option<CredsInfo>) {
        let has_object = shape_of(opcode).is_some();
        let under_creds = self.creds_mask.is_some_and(|m| req_flags & m != 0);
        let Some(req) = req.filter(|_| has_object || under_creds) else {
            return (None, None);
        };
        let key = (ring, req);
        let (object, creds) = match (self.objects.remove(&key), &self.objects_missing) {
            (Some(a), _) => {
                let object = a.object.map_or_else(
                    || ObjectInfo::Missing(Arc::from("the object record had no object")),
                    ObjectInfo::Decoded,
                );
                let creds = a
                    .creds
                    .unwrap_or_else(|| self.creds_unread("the object record had no credentials"));
                if let Some(p) = self.pending.get_mut(&key) {
                    p.object_record = true;
                }
                (object, creds)
            }
            (None, Some(why)) => (
                ObjectInfo::Missing(Arc::clone(why)),
                CredsInfo::Missing(Arc::clone(why)),
            ),
            (None, None) => {
                self.awaiting_object = Some(key);
                let why: Arc<str> = Arc::from(
                    "its object record did not come with the submission (dropped or filtered)",
                );
                (
                    ObjectInfo::Missing(Arc::clone(&why)),
                    CredsInfo::Missing(why),
                )
            }
        };
        let object = has_object.then_some(object);
        let creds = under_creds.then_some(creds);
        if let Some(p) = self.pending.get_mut(&key) {
            p.object.clone_from(&object);
            p.creds.clone_from(&creds);
        }
        (object, creds)
    }

    fn ring_created(&mut self, ptr: u64, fd: i32, flags: u32) {
        // A new ring at an old ring's address: the old one is gone, and so
        // are its requests.
        let before = self.pending.len();
        self.pending.retain(|(r, _), _| *r != ptr);
        self.stats.ring_gone += (before - self.pending.len()) as u64;
        self.by_user_data.retain(|(r, _), _| *r != ptr);
        self.user_data_rings.remove(&ptr);
        let ring = RingRef {
            id: self.take_ring_id(),
            fd: Some(fd),
            owner: None,
            setup_flags: Some(flags),
        };
        self.insert_ring(ptr, ring);
    }

    fn extra_words(&self, ring: u64, f: &TracepointFields, raw: &[u8]) -> Option<(u64, u64)> {
        let big = self
            .rings
            .get(&ring)
            .and_then(|r| r.setup_flags)
            .map(|flags| flags & IORING_SETUP_CQE32 != 0);
        let (e1, e2) = (f.get(raw, F::Extra1)?, f.get(raw, F::Extra2)?);
        // Unknown ring setup: show them only when they carry something.
        match big {
            Some(true) => Some((e1, e2)),
            Some(false) => None,
            None => (e1 != 0 || e2 != 0).then_some((e1, e2)),
        }
    }

    #[inline(always)]
    fn submitted(
        &mut self,
        ring: u64,
        req: Option<u64>,
        user_data: u64,
        opcode: Option<u8>,
        sqe_flags: Option<u8>,
        ts: u64,
    ) -> RequestRef {
        let id = self.next_id;
        self.next_id += 1;
        // Kernels before 5.13 give no request pointer: a key of our own,
        // and the CQEs are matched by user_data.
        let key = (ring, req.unwrap_or(id));
        let pending = Pending {
            id,
            object: None,
            creds: None,
            object_record: false,
            user_data,
            opcode,
            sqe_flags,
            submit_ts: ts,
            paths: Paths::default(),
            cqes: 0,
        };
        let reference = pending.reference();
        self.recent.remove(&key);
        if let Some(old) = self.pending.insert(key, pending) {
            // The kernel reused the request, so the old one ended unseen.
            if old
                .sqe_flags
                .is_some_and(|f| f & IOSQE_CQE_SKIP_SUCCESS != 0)
            {
                self.stats.skipped_cqe += 1;
            } else {
                self.stats.vanished += 1;
            }
            self.forget_user_data(ring, old.user_data, old.id);
        }
        if self.user_data_rings.contains(&ring) {
            let slot = self.by_user_data.entry((ring, user_data)).or_default();
            slot.push_back((key.1, id));
            if slot.len() > 64 {
                let pending = &self.pending;
                slot.retain(|(req, id)| is_live(pending, (ring, *req), *id));
            }
        }
        self.order.push_back((key, id));
        self.bound();
        reference
    }

    fn remember(&mut self, key: Key, r: RequestRef) {
        if self.recent_order.len() >= RECENT
            && let Some((old, id)) = self.recent_order.pop_front()
            && self.recent.get(&old).is_some_and(|r| r.id == id)
        {
            self.recent.remove(&old);
        }
        self.recent_order.push_back((key, r.id));
        self.recent.insert(key, r);
    }

    /// The key of a request known by pointer only (5.10's fail_link has no
    /// ring): a scan, for a rare event.
    fn key_of_request(&self, req: u64) -> Option<Key> {
        self.pending
            .keys()
            .chain(self.recent.keys())
            .find(|k| k.1 == req)
            .copied()
    }

    /// A live request, or one that just finished.
    fn known(&mut self, key: Key, path: Paths) -> Option<RequestRef> {
        let on_io_wq = self.worker == Some(Worker::IoWq);
        if let Some(p) = self.pending.get_mut(&key) {
            p.paths.insert(path);
            // A linked request an io-wq worker picks up right after the
            // one before it runs there without a queue_async_work event.
            if on_io_wq {
                p.paths.insert(Paths::ASYNC);
            }
            return Some(p.reference());
        }
        self.recent.get(&key).copied()
    }

    /// Keeps the table within `max_pending`, evicting the oldest requests.
    fn bound(&mut self) {
        while self.pending.len() > self.max_pending {
            let Some((key, id)) = self.order.pop_front() else {
                break;
            };
            if is_live(&self.pending, key, id)
                && let Some(old) = self.pending.remove(&key)
            {
                self.stats.evicted += 1;
                self.forget_user_data(key.0, old.user_data, old.id);
            }
        }
        if self.order.len() > 2 * self.pending.len() + 1024 {
            let pending = &self.pending;
            self.order.retain(|(key, id)| is_live(pending, *key, *id));
        }
        if self.by_user_data.len() > 2 * self.pending.len() + 1024 {
            self.by_user_data.retain(|_, queue| !queue.is_empty());
        }
    }

    fn forget_user_data(&mut self, ring: u64, user_data: u64, id: u64) {
        let Some(queue) = self.by_user_data.get_mut(&(ring, user_data)) else {
            return;
        };
        // Mostly the oldest: requests sharing a user_data complete in
        // order more often than not.
        if queue.front().is_some_and(|&(_, i)| i == id) {
            queue.pop_front();
        } else {
            queue.retain(|(_, i)| *i != id);
        }
        while let Some(&(req, i)) = queue.front() {
            if is_live(&self.pending, (ring, req), i) {
                break;
            }
            queue.pop_front();
        }
        // An emptied queue stays (see `by_user_data`): removing it freed
        // its buffer for the next request to allocate again, a malloc and
        // a free per request.
    }

    /// The oldest live request of `ring` with `user_data`.
    fn by_user_data(&mut self, ring: u64, user_data: u64) -> Option<Key> {
        self.index_user_data(ring);
        self.by_user_data
            .get(&(ring, user_data))?
            .iter()
            .find(|(req, id)| is_live(&self.pending, (ring, *req), *id))
            .map(|(req, _)| (ring, *req))
    }

    /// Enters `ring`'s live requests in `by_user_data`, the first time the
    /// ring needs it (see `user_data_rings`), in submission order: `order`'s.
    fn index_user_data(&mut self, ring: u64) {
        if !self.user_data_rings.insert(ring) {
            return;
        }
        for &(key, id) in &self.order {
            if key.0 != ring {
                continue;
            }
            if let Some(p) = self.pending.get(&key).filter(|p| p.id == id) {
                self.by_user_data
                    .entry((ring, p.user_data))
                    .or_default()
                    .push_back((key.1, id));
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn completed(
        &mut self,
        ring: u64,
        req: Option<u64>,
        user_data: u64,
        res: i32,
        cflags: Option<u32>,
        extra: Option<(u64, u64)>,
        lost: bool,
        ts: u64,
    ) -> Completion {
        let flags = cflags.unwrap_or(0);
        let terminal = flags & CQE_F_MORE == 0;
        // A request's last CQE takes its entry out at once: one hash
        // lookup per CQE where a look, a borrow and a removal took three.
        let mut taken = None;
        let by_req = match req.map(|r| (ring, r)) {
            Some(k) if terminal => {
                taken = self.pending.remove(&k);
                taken.is_some().then_some(k)
            }
            Some(k) => self.pending.contains_key(&k).then_some(k),
            None => None,
        };
        let (key, matched) = match by_req {
            Some(k) => (Some(k), Match::Request),
            // Multishot and overflowed CQEs come without a request; a
            // zero-copy notification comes from a request never submitted.
            None if req.is_none() || flags & CQE_F_NOTIF != 0 => {
                match self.by_user_data(ring, user_data) {
                    Some(k) => (Some(k), Match::UserData),
                    None => (None, Match::None),
                }
            }
            None => (None, Match::None),
        };
        // What the request adds, then the completion built whole, once, in
        // the caller's slot (built and then updated, it was copied out
        // with memcpy).
        let (request, cqes, latency_ns, paths, object, creds) = match key {
            None => {
                self.stats.unmatched += 1;
                (None, 1, None, Paths::default(), None, None)
            }
            Some(key) => {
                let io_wq = self.worker == Some(Worker::IoWq);
                let p = match taken.as_mut() {
                    Some(p) => p,
                    None => self.pending.get_mut(&key).expect("looked up above"),
                };
                p.cqes += 1;
                if io_wq {
                    p.paths.insert(Paths::ASYNC);
                }
                let request = p.reference();
                let (cqes, latency_ns, paths) = (p.cqes, ts.saturating_sub(p.submit_ts), p.paths);
                let (object, creds) = if terminal {
                    (p.object.take(), p.creds.take())
                } else {
                    (None, None)
                };
                let finished = if terminal {
                    taken.or_else(|| self.pending.remove(&key))
                } else {
                    None
                };
                if let Some(old) = finished {
                    self.forget_user_data(ring, old.user_data, old.id);
                    self.remember(key, old.reference());
                }
                (Some(request), cqes, Some(latency_ns), paths, object, creds)
            }
        };
        Completion {
            request,
            matched,
            user_data,
            res,
            cflags,
            extra,
            lost,
            terminal,
            cqes,
            latency_ns,
            paths,
            object,
            creds,
        }
    }

    /// The request an intermediate event is about, marking the path it
    /// took.
    fn on_path(&mut self, ring: u64, f: &TracepointFields, raw: &[u8], path: Paths) -> RequestRef {
        let user_data = f.u64(raw, F::UserData);
        let opcode = f.get(raw, F::Opcode).map(|v| v as u8);
        let key = match f.get(raw, F::Req) {
            // 5.10's fail_link names the request but not its ring.
            Some(req) if !f.has(F::Ctx) => self.key_of_request(req),
            Some(req) => Some((ring, req)),
            // Kernels before 5.13 name requests by user_data only.
            None if f.has(F::UserData) => self.by_user_data(ring, user_data),
            None => None,
        };
        match key.and_then(|k| self.known(k, path)) {
            Some(r) => r,
            None => RequestRef {
                id: None,
                user_data,
                opcode,
                sqe_flags: None,
            },
        }
    }
}

/// The process an event belongs to: before 5.12 io-wq and SQPOLL ran on
/// kernel threads of their own, and the request still belongs to the
/// ring's owner.
fn owned_by(worker: Option<Worker>, ring: Option<RingRef>, pid: u32) -> u32 {
    match ring.and_then(|r| r.owner) {
        Some(owner) if worker.is_some() => owner,
        _ => pid,
    }
}

/// The task of a request event.
fn task(header: &RecordHeader, comm: Comm, pid: u32) -> Task {
    Task {
        ts_ns: header.ts_ns,
        pid,
        tid: header.tid,
        uid: header.uid,
        gid: header.gid,
        comm_bytes: comm,
        context: None,
    }
}

/// The io_uring thread a record ran on, if any.
fn worker_of(header: &RecordHeader, comm: &Comm) -> Option<Worker> {
    if header.flags & HDR_TASK_FLAGS_READ != 0 {
        (header.flags & HDR_IO_WORKER != 0).then(|| Worker::of_io_thread(comm.as_bytes()))
    } else {
        // Only the name to go by (before 5.12): kernel worker names are
        // ASCII, so a name that is not UTF-8 is no worker.
        comm.as_str().and_then(Worker::from_comm)
    }
}

fn is_live(pending: &HashMap<Key, Pending>, key: Key, id: u64) -> bool {
    pending.get(&key).is_some_and(|p| p.id == id)
}

/// What an object record brought, kept until its submission comes.
#[derive(Debug)]
struct Arrived {
    object: Option<Box<RequestObject>>,
    creds: Option<CredsInfo>,
}

/// What an object record adds to a submission already decoded (and held
/// back by the decoder for it).
#[derive(Debug)]
pub struct Late {
    object: Option<ObjectInfo>,
    creds: Option<CredsInfo>,
}

impl Late {
    /// Fills the held submission's object and credentials in.
    pub fn apply(self, detail: &mut RequestDetail) {
        if let RequestDetail::Submit { object, creds, .. } = detail {
            if self.object.is_some() {
                *object = self.object;
            }
            if self.creds.is_some() {
                *creds = self.creds;
            }
        }
    }
}

/// The owner field and the raw tracepoint bytes of a record, in place.
fn raw_part<'a>(
    tp: &RequestTracepoint,
    kind: u16,
    bytes: &'a [u8],
) -> Result<(u32, &'a [u8]), RecordError> {
    const OWNER: usize = std::mem::offset_of!(TracepointRecord<0>, ring_owner);
    const RAW: usize = std::mem::offset_of!(TracepointRecord<0>, raw);
    let need = RAW + tp.raw_len;
    let (Some(owner), Some(raw)) = (bytes.get(OWNER..OWNER + 4), bytes.get(RAW..need)) else {
        return Err(RecordError::Size {
            kind,
            need,
            got: bytes.len(),
        });
    };
    let owner = u32::from_le_bytes(owner.try_into().expect("4 bytes"));
    Ok((owner, raw))
}

#[cfg(test)]
mod tests {
    use uringtrace_common::{RecordHeader, RecordKind, request::RAW_SMALL};

    use super::*;
    use crate::requests::event::Creds;

    const SUBMIT: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long long user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:u8 opcode;\toffset:32;\tsize:1;\tsigned:0;
\tfield:unsigned long long flags;\toffset:40;\tsize:8;\tsigned:0;
\tfield:bool sq_thread;\toffset:48;\tsize:1;\tsigned:0;";
    const COMPLETE: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u64 user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int res;\toffset:32;\tsize:4;\tsigned:1;
\tfield:unsigned cflags;\toffset:36;\tsize:4;\tsigned:0;
\tfield:u64 extra1;\toffset:40;\tsize:8;\tsigned:0;
\tfield:u64 extra2;\toffset:48;\tsize:8;\tsigned:0;";
    const OVERFLOW: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long long user_data;\toffset:16;\tsize:8;\tsigned:0;
\tfield:s32 res;\toffset:24;\tsize:4;\tsigned:1;
\tfield:u32 cflags;\toffset:28;\tsize:4;\tsigned:0;
\tfield:void * ocqe;\toffset:32;\tsize:8;\tsigned:0;";
    const CREATE: &str = "\
\tfield:int fd;\toffset:8;\tsize:4;\tsigned:1;
\tfield:void * ctx;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u32 sq_entries;\toffset:24;\tsize:4;\tsigned:0;
\tfield:u32 cq_entries;\toffset:28;\tsize:4;\tsigned:0;
\tfield:u32 flags;\toffset:32;\tsize:4;\tsigned:0;";
    /// 5.10: no request pointer, no cflags, a long res.
    const SUBMIT_5_10: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:u8 opcode;\toffset:16;\tsize:1;\tsigned:0;
\tfield:u64 user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:bool force_nonblock;\toffset:32;\tsize:1;\tsigned:0;
\tfield:bool sq_thread;\toffset:33;\tsize:1;\tsigned:0;";
    const COMPLETE_5_10: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:u64 user_data;\toffset:16;\tsize:8;\tsigned:0;
\tfield:long res;\toffset:24;\tsize:8;\tsigned:1;";

    const RING: u64 = 0xffff_8880_0000_1000;

    fn tracker(max: usize) -> Tracker {
        Tracker::new(
            RequestFormats::from_texts(&[
                (RecordKind::Submit, SUBMIT),
                (RecordKind::Complete, COMPLETE),
                (RecordKind::CqeOverflow, OVERFLOW),
                (RecordKind::RingCreate, CREATE),
            ]),
            max,
            ObjectSupport::default(),
        )
    }

    /// A record of `kind` with `fields` written at their offsets.
    fn record(
        kind: RecordKind,
        ts: u64,
        fields: &[(usize, u64, usize)],
    ) -> (RecordHeader, Vec<u8>) {
        let mut header = RecordHeader::empty(kind);
        header.ts_ns = ts;
        header.pid = 10;
        header.tid = 10;
        header.comm[..4].copy_from_slice(b"test");
        let mut rec = TracepointRecord::<RAW_SMALL> {
            header,
            ring_owner: 0,
            _pad: 0,
            raw: [0; RAW_SMALL],
        };
        for &(offset, value, size) in fields {
            rec.raw[offset..offset + size].copy_from_slice(&value.to_le_bytes()[..size]);
        }
        // SAFETY: a repr(C) record's own bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&rec as *const TracepointRecord<RAW_SMALL>).cast::<u8>(),
                size_of::<TracepointRecord<RAW_SMALL>>(),
            )
        }
        .to_vec();
        (header, bytes)
    }

    fn submit(t: &mut Tracker, ts: u64, req: u64, user_data: u64, flags: u64) -> RequestRef {
        let (h, b) = record(
            RecordKind::Submit,
            ts,
            &[
                (8, RING, 8),
                (16, req, 8),
                (24, user_data, 8),
                (32, 9, 1),
                (40, flags, 8),
            ],
        );
        match t
            .process_request(&h, RecordKind::Submit, &b)
            .unwrap()
            .detail
        {
            RequestDetail::Submit { request, .. } => request,
            other => panic!("{other:?}"),
        }
    }

    fn complete(
        t: &mut Tracker,
        ts: u64,
        req: u64,
        user_data: u64,
        res: i32,
        cflags: u32,
    ) -> Completion {
        let (h, b) = record(
            RecordKind::Complete,
            ts,
            &[
                (8, RING, 8),
                (16, req, 8),
                (24, user_data, 8),
                (32, res as u32 as u64, 4),
                (36, u64::from(cflags), 4),
            ],
        );
        match t
            .process_request(&h, RecordKind::Complete, &b)
            .unwrap()
            .detail
        {
            RequestDetail::Complete(c) => c,
            other => panic!("{other:?}"),
        }
    }

    /// An issue record of the kprobe submit path; `None`: a re-issue.
    fn issue(
        t: &mut Tracker,
        ts: u64,
        req: u64,
        user_data: u64,
        worker: bool,
    ) -> Option<RequestEvent> {
        let mut header = RecordHeader::empty(RecordKind::Issue);
        header.ts_ns = ts;
        header.pid = 10;
        header.tid = 11;
        header.flags = HDR_TASK_FLAGS_READ | if worker { HDR_IO_WORKER } else { 0 };
        header.comm[..4].copy_from_slice(b"test");
        let rec = IssueRecord {
            header,
            ring_owner: 0,
            hook: 0,
            sq_thread: 0,
            opcode: 9,
            _pad: 0,
            ring: RING,
            req,
            user_data,
            req_flags: 1 << 4,
        };
        // SAFETY: a repr(C) record's own bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&rec as *const IssueRecord).cast::<u8>(),
                size_of::<IssueRecord>(),
            )
        };
        t.issue(&header, bytes).unwrap()
    }

    #[test]
    fn kprobe_issues_are_submitted_once() {
        let mut t = tracker(16);
        let first = issue(&mut t, 100, 0xa0, 7, false).expect("first issue submits");
        let RequestDetail::Submit {
            request,
            hook,
            sq_thread,
            ..
        } = first.detail
        else {
            panic!("{first:?}");
        };
        assert_eq!(hook, Some("kprobe:io_issue_sqe"));
        assert_eq!(
            (request.opcode, request.sqe_flags, sq_thread),
            (Some(9), Some(1 << 4), false)
        );
        // io-wq retries it: no second submission, but the path is noted.
        assert!(issue(&mut t, 110, 0xa0, 7, true).is_none());
        assert!(issue(&mut t, 120, 0xa0, 7, true).is_none());
        assert_eq!(t.stats.reissued, 2);
        let c = complete(&mut t, 130, 0xa0, 7, 0, 0);
        assert_eq!(c.request.unwrap().id, request.id);
        assert!(c.paths.contains(Paths::ASYNC));
        // The kernel reuses the address for the next request.
        let again = issue(&mut t, 140, 0xa0, 7, false).expect("a new request");
        assert_ne!(again.detail.request().unwrap().id, request.id);
        // Another request at an address whose request had no traced CQE.
        assert!(issue(&mut t, 150, 0xa0, 8, false).is_some());
        assert_eq!((t.stats.reissued, t.stats.vanished), (2, 1));
    }

    #[test]
    fn joins_by_request_not_user_data() {
        let mut t = tracker(16);
        // Two requests with the same user_data, completed out of order.
        let a = submit(&mut t, 100, 0xa0, 7, 0);
        let b = submit(&mut t, 110, 0xb0, 7, 1 << 2);
        let cb = complete(&mut t, 150, 0xb0, 7, -9, 0);
        assert_eq!(cb.request.unwrap().id, b.id);
        assert_eq!(cb.request.unwrap().sqe_flags, Some(1 << 2));
        assert_eq!(
            (cb.latency_ns, cb.matched, cb.terminal),
            (Some(40), Match::Request, true)
        );
        let ca = complete(&mut t, 300, 0xa0, 7, 0, 0);
        assert_eq!(ca.request.unwrap().id, a.id);
        assert_eq!(ca.latency_ns, Some(200));
        assert_eq!(t.in_flight(), (0, 0));
        assert!(t.by_user_data.values().all(VecDeque::is_empty));
        assert_eq!(t.stats, TrackerStats::default());
    }

    #[test]
    fn multishot_cqes_without_a_request_join_by_user_data() {
        let mut t = tracker(16);
        let r = submit(&mut t, 0, 0xa0, 5, 0);
        for i in 1..=3 {
            // Aux CQEs: no request pointer, F_MORE.
            let c = complete(&mut t, i * 10, 0, 5, 100, 0x3 | (i as u32) << 16);
            assert_eq!(
                (c.request.unwrap().id, c.matched, c.cqes),
                (r.id, Match::UserData, i as u32)
            );
            assert!(!c.terminal);
        }
        let last = complete(&mut t, 50, 0xa0, 5, 0, 0);
        assert_eq!(
            (last.cqes, last.terminal, last.matched),
            (4, true, Match::Request)
        );
        assert_eq!(t.in_flight(), (0, 0));
    }

    /// The user_data index of a ring is made when a CQE without a request
    /// pointer first needs it, from the requests already in flight, oldest
    /// first; from then on the ring's new requests are entered at once.
    #[test]
    fn user_data_index_is_made_when_first_needed() {
        let mut t = tracker(16);
        let a = submit(&mut t, 0, 0xa0, 5, 0);
        let b = submit(&mut t, 1, 0xb0, 5, 0);
        submit(&mut t, 2, 0xc0, 6, 0);
        assert!(t.by_user_data.is_empty() && t.user_data_rings.is_empty());
        // Multishot-style CQE, F_MORE: the oldest request with user_data 5.
        let c = complete(&mut t, 10, 0, 5, 1, 0x2);
        assert_eq!((c.request.unwrap().id, c.matched), (a.id, Match::UserData));
        assert_eq!(t.by_user_data[&(RING, 5)].len(), 2);
        assert_eq!(t.by_user_data[&(RING, 6)].len(), 1);
        // The oldest ends by pointer; the next pointer-less CQE is b's.
        complete(&mut t, 11, 0xa0, 5, 0, 0);
        let c = complete(&mut t, 12, 0, 5, 1, 0x2);
        assert_eq!((c.request.unwrap().id, c.matched), (b.id, Match::UserData));
        let d = submit(&mut t, 13, 0xd0, 7, 0);
        assert_eq!(t.by_user_data[&(RING, 7)].len(), 1);
        let c = complete(&mut t, 14, 0, 7, 1, 0x2);
        assert_eq!((c.request.unwrap().id, c.matched), (d.id, Match::UserData));
    }

    /// A ring forgotten to keep the ring table bounded takes its
    /// user_data index with it; needed again, the index is made again.
    #[test]
    fn forgotten_ring_takes_its_user_data_index() {
        // Room for every request: only the ring table is full.
        let mut t = tracker(2 * MAX_RINGS);
        let a = submit(&mut t, 0, 0xa0, 5, 0);
        complete(&mut t, 1, 0, 5, 1, 0x2);
        assert!(t.user_data_rings.contains(&RING));
        // Another ring's submissions until RING is the oldest of a full table.
        for i in 0..MAX_RINGS as u64 {
            let (h, b) = record(
                RecordKind::Submit,
                2,
                &[
                    (8, 0x1_0000_0000 + 0x1000 * i, 8),
                    (16, 0xb0, 8),
                    (24, 1, 8),
                ],
            );
            t.process_request(&h, RecordKind::Submit, &b).unwrap();
        }
        assert!(!t.user_data_rings.contains(&RING));
        assert!(t.by_user_data.keys().all(|(r, _)| *r != RING));
        assert!(t.user_data_rings.len() <= t.rings.len());
        // Its request is still pending: a pointer-less CQE finds it again.
        let c = complete(&mut t, 3, 0, 5, 1, 0x2);
        assert_eq!((c.request.unwrap().id, c.matched), (a.id, Match::UserData));
    }

    /// A ring whose CQEs all name their request keeps no user_data index.
    #[test]
    fn rings_joined_by_pointer_keep_no_user_data_index() {
        let mut t = tracker(16);
        for i in 0..100 {
            let r = submit(&mut t, i, 0x1000 + 8 * i, i % 3, 0);
            let c = complete(&mut t, i + 1, 0x1000 + 8 * i, i % 3, 0, 0);
            assert_eq!((c.request.unwrap().id, c.matched), (r.id, Match::Request));
        }
        assert!(t.by_user_data.is_empty() && t.user_data_rings.is_empty());
        assert_eq!(t.stats, TrackerStats::default());
    }

    #[test]
    fn overflowed_cqe_ends_its_request() {
        let mut t = tracker(16);
        let r = submit(&mut t, 0, 0xa0, 5, 0);
        let (h, b) = record(
            RecordKind::CqeOverflow,
            9,
            &[
                (8, RING, 8),
                (16, 5, 8),
                (24, 0, 4),
                (28, 0, 4),
                (32, 0xffff_0000, 8),
            ],
        );
        let RequestDetail::CqeOverflow(c) = t
            .process_request(&h, RecordKind::CqeOverflow, &b)
            .unwrap()
            .detail
        else {
            panic!()
        };
        assert_eq!(
            (c.request.unwrap().id, c.matched, c.lost),
            (r.id, Match::UserData, false)
        );
        assert_eq!(t.in_flight(), (0, 0));
    }

    #[test]
    fn bounded_table_evicts_the_oldest_and_counts() {
        let mut t = tracker(4);
        let ids: Vec<_> = (0..6)
            .map(|i| submit(&mut t, i, 0x100 + i, i, 0).id)
            .collect();
        assert_eq!(t.in_flight(), (4, 0));
        assert_eq!(t.stats.evicted, 2);
        // The evicted ones complete unmatched; the others still join.
        let c0 = complete(&mut t, 10, 0x100, 0, 0, 0);
        assert_eq!((c0.request, c0.matched), (None, Match::None));
        assert_eq!(t.stats.unmatched, 1);
        let c5 = complete(&mut t, 10, 0x105, 5, 0, 0);
        assert_eq!(c5.request.unwrap().id, ids[5]);
        // A long run stays bounded in every table.
        for i in 0..10_000 {
            submit(&mut t, i, 0x1000 + i, i, 0);
        }
        assert_eq!(t.in_flight().0, 4);
        assert!(t.order.len() <= 2 * 4 + 1024 + 1);
        assert!(t.by_user_data.len() <= 2 * 4 + 1024 + 1);
        assert!(t.by_user_data.values().map(VecDeque::len).sum::<usize>() <= 4 + 1);
    }

    #[test]
    fn reused_request_counts_the_one_without_a_cqe() {
        let mut t = tracker(16);
        submit(&mut t, 0, 0xa0, 1, 1 << 6); // CQE_SKIP_SUCCESS, succeeded
        assert_eq!(t.in_flight(), (1, 1));
        submit(&mut t, 5, 0xa0, 2, 0); // the kernel reused the request
        assert_eq!(t.stats.skipped_cqe, 1);
        submit(&mut t, 6, 0xa0, 3, 0);
        assert_eq!(t.stats.vanished, 1);
        assert_eq!(t.in_flight(), (1, 0));
    }

    #[test]
    fn new_ring_at_an_old_address_drops_its_requests() {
        let mut t = tracker(16);
        submit(&mut t, 0, 0xa0, 1, 0);
        let first = t.ring(RING).id;
        let (h, b) = record(
            RecordKind::RingCreate,
            1,
            &[(8, 4, 4), (16, RING, 8), (32, 2, 4)],
        );
        let ev = t.process_request(&h, RecordKind::RingCreate, &b).unwrap();
        let ring = ev.ring.unwrap();
        assert_ne!(ring.id, first);
        assert_eq!(
            (ring.fd, ring.owner, ring.sqpoll()),
            (Some(4), Some(10), Some(true))
        );
        assert_eq!((t.in_flight(), t.stats.ring_gone), ((0, 0), 1));
    }

    #[test]
    fn fail_link_without_a_ring_finds_its_requests() {
        // 5.10: io_uring_fail_link has req and link, no ctx.
        const FAIL_LINK_5_10: &str = "\
\tfield:void * req;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * target_req;\toffset:16;\tsize:8;\tsigned:0;";
        let fail_link = FAIL_LINK_5_10.replace("target_req", "link");
        let mut t = Tracker::new(
            RequestFormats::from_texts(&[
                (RecordKind::Submit, SUBMIT),
                (RecordKind::Complete, COMPLETE),
                (RecordKind::FailLink, &fail_link),
            ]),
            16,
            ObjectSupport::default(),
        );
        let a = submit(&mut t, 0, 0xa0, 1, 1 << 2);
        let b = submit(&mut t, 1, 0xb0, 2, 0);
        complete(&mut t, 2, 0xa0, 1, -9, 0);
        let (h, bytes) = record(RecordKind::FailLink, 3, &[(8, 0xa0, 8), (16, 0xb0, 8)]);
        let ev = t.process_request(&h, RecordKind::FailLink, &bytes).unwrap();
        assert_eq!(ev.ring, None);
        let RequestDetail::FailLink { request, next } = ev.detail else {
            panic!()
        };
        assert_eq!((request.id, next.and_then(|n| n.id)), (a.id, b.id));
    }

    #[test]
    fn old_kernels_join_by_user_data() {
        let mut t = Tracker::new(
            RequestFormats::from_texts(&[
                (RecordKind::Submit, SUBMIT_5_10),
                (RecordKind::Complete, COMPLETE_5_10),
            ]),
            16,
            ObjectSupport::default(),
        );
        let (h, b) = record(
            RecordKind::Submit,
            1,
            &[(8, RING, 8), (16, 22, 1), (24, 42, 8)],
        );
        let RequestDetail::Submit {
            request,
            force_nonblock,
            ..
        } = t
            .process_request(&h, RecordKind::Submit, &b)
            .unwrap()
            .detail
        else {
            panic!()
        };
        assert_eq!(
            (request.opcode, request.user_data, force_nonblock),
            (Some(22), 42, Some(false))
        );
        let (h, b) = record(
            RecordKind::Complete,
            9,
            &[(8, RING, 8), (16, 42, 8), (24, (-11i64) as u64, 8)],
        );
        let RequestDetail::Complete(c) = t
            .process_request(&h, RecordKind::Complete, &b)
            .unwrap()
            .detail
        else {
            panic!()
        };
        assert_eq!(
            (c.request.unwrap().id, c.res, c.cflags, c.matched),
            (request.id, -11, None, Match::UserData)
        );
        assert_eq!(c.latency_ns, Some(8));
        assert_eq!(t.in_flight(), (0, 0));
    }

    #[test]
    fn io_threads_by_the_kernels_flag_not_their_name() {
        let mut t = tracker(16);
        let worker_of = |t: &mut Tracker, comm: &[u8], flags: u32| {
            let (mut h, _) = record(RecordKind::Submit, 1, &[]);
            h.comm = [0; 16];
            h.comm[..comm.len()].copy_from_slice(comm);
            h.flags = flags;
            let (_, mut b) = record(RecordKind::Submit, 1, &[(8, RING, 8), (16, 0xa0, 8)]);
            // The header is the record's first bytes.
            // SAFETY: a repr(C) header's own bytes.
            let hb = unsafe {
                std::slice::from_raw_parts(
                    (&h as *const RecordHeader).cast::<u8>(),
                    size_of::<RecordHeader>(),
                )
            };
            b[..hb.len()].copy_from_slice(hb);
            let ev = t.process_request(&h, RecordKind::Submit, &b).unwrap();
            (ev.worker, ev.task.pid)
        };
        let read = HDR_TASK_FLAGS_READ;
        // A thread that only calls itself a worker is itself.
        assert_eq!(worker_of(&mut t, b"iou-wrk-99", read), (None, 10));
        assert_eq!(worker_of(&mut t, b"iou-sqp-99", read), (None, 10));
        // The kernel's own threads, whatever their names.
        let io = read | HDR_IO_WORKER;
        assert_eq!(worker_of(&mut t, b"iou-wrk-3", io).0, Some(Worker::IoWq));
        assert_eq!(worker_of(&mut t, b"iou-sqp-3", io).0, Some(Worker::SqPoll));
        assert_eq!(worker_of(&mut t, b"renamed", io).0, Some(Worker::IoWq));
        // Flags not read (before 5.12): the name is all there is.
        assert_eq!(worker_of(&mut t, b"iou-wrk-3", 0).0, Some(Worker::IoWq));
        assert_eq!(worker_of(&mut t, b"io_uring-sq", 0).0, Some(Worker::SqPoll));
        assert_eq!(worker_of(&mut t, b"nginx", 0).0, None);
    }

    /// An object record written for a request's credentials only.
    fn creds_record(req: u64, creds: Option<[u32; 4]>) -> Vec<u8> {
        use uringtrace_common::request_object::{OBJ_CREDS, OBJ_CREDS_READ, SHAPE_NONE};
        // SAFETY: a plain-old-data record, all zeroes is a valid one.
        let mut r: ObjectRecord = unsafe { std::mem::zeroed() };
        r.header = RecordHeader::empty(RecordKind::RequestObject);
        r.ring = RING;
        r.req = req;
        r.shape = SHAPE_NONE;
        r.flags = OBJ_CREDS;
        if let Some([uid, gid, euid, egid]) = creds {
            r.flags |= OBJ_CREDS_READ;
            (r.creds_uid, r.creds_gid, r.creds_euid, r.creds_egid) = (uid, gid, euid, egid);
        }
        // SAFETY: a repr(C) record's own bytes.
        unsafe {
            std::slice::from_raw_parts(
                (&r as *const ObjectRecord).cast::<u8>(),
                size_of::<ObjectRecord>(),
            )
        }
        .to_vec()
    }

    fn submit_creds(t: &mut Tracker, req: u64, flags: u64) -> Option<CredsInfo> {
        let (h, b) = record(
            RecordKind::Submit,
            1,
            &[
                (8, RING, 8),
                (16, req, 8),
                (24, 1, 8),
                (32, 0, 1),
                (40, flags, 8),
            ],
        );
        match t
            .process_request(&h, RecordKind::Submit, &b)
            .unwrap()
            .detail
        {
            RequestDetail::Submit { creds, object, .. } => {
                assert_eq!(object, None, "a NOP has no object");
                creds
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn personality_creds_join_their_request() {
        const CREDS: u64 = 1 << 19;
        let support = ObjectSupport {
            missing: None,
            creds_mask: Some(CREDS),
            creds_missing: None,
        };
        let mut t = Tracker::new(
            RequestFormats::from_texts(&[
                (RecordKind::Submit, SUBMIT),
                (RecordKind::Complete, COMPLETE),
            ]),
            16,
            support.clone(),
        );
        let ids = Creds {
            uid: 4201,
            gid: 4301,
            euid: 4202,
            egid: 4302,
        };
        // The record first, then its submission.
        assert!(
            t.object(&creds_record(0xa0, Some([4201, 4301, 4202, 4302])))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            submit_creds(&mut t, 0xa0, CREDS),
            Some(CredsInfo::Read(ids))
        );
        assert!(!t.take_awaiting_object());
        assert_eq!(
            complete(&mut t, 2, 0xa0, 1, 0, 0).creds,
            Some(CredsInfo::Read(ids))
        );
        // The submission first: held for the record, completed by it.
        assert!(matches!(
            submit_creds(&mut t, 0xb0, CREDS),
            Some(CredsInfo::Missing(_))
        ));
        assert!(t.take_awaiting_object());
        let late = t
            .object(&creds_record(0xb0, Some([4201, 4301, 4202, 4302])))
            .unwrap()
            .expect("completes the held submission");
        let mut detail = RequestDetail::Submit {
            request: RequestRef {
                id: None,
                user_data: 1,
                opcode: Some(0),
                sqe_flags: None,
            },
            req_flags: CREDS,
            sq_thread: false,
            force_nonblock: None,
            object: None,
            creds: None,
            hook: None,
        };
        late.apply(&mut detail);
        let RequestDetail::Submit { creds, .. } = &detail else {
            panic!()
        };
        assert_eq!(creds, &Some(CredsInfo::Read(ids)));
        assert_eq!(
            complete(&mut t, 3, 0xb0, 1, 0, 0).creds,
            Some(CredsInfo::Read(ids))
        );
        // Without the flag: its own credentials, nothing awaited.
        assert_eq!(submit_creds(&mut t, 0xc0, 0), None);
        assert!(!t.take_awaiting_object());
        // A failed read says so, never guesses.
        t.object(&creds_record(0xd0, None)).unwrap();
        assert!(matches!(
            submit_creds(&mut t, 0xd0, CREDS),
            Some(CredsInfo::Missing(why)) if why.contains("struct cred")
        ));
        // A kernel whose BTF lacks the bit: nothing is claimed.
        let mut blind = Tracker::new(
            RequestFormats::from_texts(&[(RecordKind::Submit, SUBMIT)]),
            16,
            ObjectSupport {
                creds_mask: None,
                ..support
            },
        );
        assert_eq!(submit_creds(&mut blind, 0xe0, CREDS), None);
    }
}
