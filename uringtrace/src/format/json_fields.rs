//! Hand-written NDJSON for the records every traced event writes (system
//! calls and requests): the bytes of the serde definitions in json.rs and
//! json_request.rs (their tests compare the two), without going through
//! serde.
//!
//! Through serde, a record with flattened parts is a map of some thirty
//! entries, each a call with its key written and scanned at run time; at a
//! million events a second that was most of the consumer's time. Here a
//! key and its punctuation are one constant copied whole, names of our own
//! are not scanned for escapes, and the rare parts (what a request touches,
//! process context, the other event kinds) still go through serde, spliced
//! in.

use std::cell::RefCell;

use serde::Serialize;

use super::{
    json_writer::{self, put, write_i64, write_name, write_str, write_u64},
    ndjson::{CommFields, ProcessFields, SCHEMA_VERSION},
};
use crate::{
    clock::WallClock,
    decode::flag_set::FlagNames,
    event::{Comm, Task},
};

/// `,"name":`, the bytes before a field's value, as one constant.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}
pub(crate) use key;

/// The task's part of the last line written (`,"pid":` to the end of
/// `comm`), by what it was made of: consecutive events mostly come from
/// one thread, and writing those five fields (four numbers, a name
/// checked for characters to escape) was a tenth of the consumer's time at
/// a few million events a second. One per formatter.
#[derive(Default)]
pub struct TaskCache {
    last: RefCell<(Option<TaskKey>, Vec<u8>)>,
}

/// pid, tid, uid, gid, comm.
type TaskKey = (u32, u32, u32, u32, Comm);

/// One record being written into a line buffer.
pub struct Fields<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Fields<'a> {
    /// `{"schema":1,"event":"<event>"`.
    pub fn open(out: &'a mut Vec<u8>, event: &'static str) -> Self {
        const _: () = assert!(SCHEMA_VERSION == 1, "the prefix below says 1");
        put(out, b"{\"schema\":1,\"event\":");
        write_name(out, event);
        Self { out }
    }

    /// What every event has after its name: time, ids, command name and,
    /// with `--context`, the process's.
    pub fn task(&mut self, task: &Task, clock: &WallClock, tasks: &TaskCache) {
        self.u64(key!("ts_ns"), task.ts_ns);
        self.key(key!("time"));
        self.out.push(b'"');
        put(self.out, clock.timestamp(task.ts_ns).as_bytes());
        self.out.push(b'"');
        let key = (task.pid, task.tid, task.uid, task.gid, task.comm_bytes);
        let mut last = tasks.last.borrow_mut();
        let (last_key, bytes) = &mut *last;
        if *last_key != Some(key) {
            bytes.clear();
            let mut ids = Fields { out: bytes };
            ids.u64(key!("pid"), u64::from(task.pid));
            ids.u64(key!("tid"), u64::from(task.tid));
            ids.u64(key!("uid"), u64::from(task.uid));
            ids.u64(key!("gid"), u64::from(task.gid));
            match task.comm_bytes.as_str() {
                Some(comm) => ids.str(key!("comm"), comm),
                // Not UTF-8: `comm` and `comm_hex`, as their serde struct.
                None => ids.flatten(&CommFields::new(&task.comm_bytes)),
            }
            *last_key = Some(key);
        }
        put(self.out, bytes);
        drop(last);
        if let Some(context) = task.context.as_deref() {
            self.flatten(&ProcessFields::new(context));
        }
    }

    /// Ends the record and its line.
    pub fn close(self) {
        put(self.out, b"}\n");
    }

    #[inline]
    pub fn key(&mut self, key: &'static [u8]) {
        put(self.out, key);
    }

    #[inline]
    pub fn u64(&mut self, key: &'static [u8], value: u64) {
        self.key(key);
        write_u64(self.out, value);
    }

    #[inline]
    pub fn i64(&mut self, key: &'static [u8], value: i64) {
        self.key(key);
        write_i64(self.out, value);
    }

    #[inline]
    pub fn bool(&mut self, key: &'static [u8], value: bool) {
        self.key(key);
        put(self.out, if value { b"true" } else { b"false" });
    }

    /// A string from outside this program (escaped as needed).
    #[inline]
    pub fn str(&mut self, key: &'static [u8], value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// One of this program's own names (not scanned for escapes).
    #[inline]
    pub fn name(&mut self, key: &'static [u8], value: &'static str) {
        self.key(key);
        write_name(self.out, value);
    }

    #[inline]
    pub fn null(&mut self, key: &'static [u8]) {
        self.key(key);
        put(self.out, b"null");
    }

    #[inline]
    pub fn opt_u64(&mut self, key: &'static [u8], value: Option<u64>) {
        match value {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn opt_i64(&mut self, key: &'static [u8], value: Option<i64>) {
        match value {
            Some(v) => self.i64(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn opt_bool(&mut self, key: &'static [u8], value: Option<bool>) {
        match value {
            Some(v) => self.bool(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn opt_name(&mut self, key: &'static [u8], value: Option<&'static str>) {
        match value {
            Some(v) => self.name(key, v),
            None => self.null(key),
        }
    }

    /// An array of this program's names.
    pub fn names(&mut self, key: &'static [u8], names: impl Iterator<Item = &'static str>) {
        self.key(key);
        self.out.push(b'[');
        for (i, name) in names.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_name(self.out, name);
        }
        self.out.push(b']');
    }

    /// A flag word's names, unknown bits last in hex, as
    /// [`FlagNames`]' serde form.
    pub fn flag_names(&mut self, key: &'static [u8], names: FlagNames) {
        if names.is_empty() {
            // No walk of the table for a zero word (an SQE's flags, a
            // CQE's: the common case).
            self.key(key);
            put(self.out, b"[]");
            return;
        }
        self.names(key, names.known());
        let rest = names.unknown();
        if rest != 0 {
            // Inside the array just closed: reopen it for the hex number.
            self.out.pop();
            if self.out.last() != Some(&b'[') {
                self.out.push(b',');
            }
            use std::io::Write as _;
            let _ = write!(self.out, "\"{rest:#x}\"]");
        }
    }

    /// `"key":` and `value` through serde.
    pub fn value(&mut self, key: &'static [u8], value: &impl Serialize) {
        self.key(key);
        // Our own types serialize without error (json_writer's only errors
        // are map keys that are not strings).
        let _ = json_writer::write(value, self.out);
    }

    /// The fields of `value`, an object through serde, as fields of this
    /// record (serde's `flatten`): its braces become the comma before
    /// them, and an empty object adds nothing.
    pub fn flatten(&mut self, value: &impl Serialize) {
        let start = self.out.len();
        let _ = json_writer::write(value, self.out);
        debug_assert_eq!(self.out.get(start), Some(&b'{'));
        debug_assert_eq!(self.out.last(), Some(&b'}'));
        if self.out.len() - start <= 2 {
            self.out.truncate(start);
        } else {
            self.out[start] = b',';
            self.out.pop();
        }
    }
}

/// The hand-written lines against their serde definitions, over many
/// generated events: every kind, every optional field present and absent,
/// names and paths that need escapes or are not UTF-8.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::TaskCache;
    use uringtrace_common::request_object::op;

    use crate::{
        clock::WallClock,
        event::{
            Call, Comm, EnterArgument, EnterCall, GeteventsArg, Outcome, Params, Read,
            RegisterCall, SetupCall, SyscallEvent, Task, Timespec,
        },
        format::{json, json_request},
        process_context::ProcessContext,
        requests::{
            event::{
                Completion, Creds, CredsInfo, FailedSqe, Match, ObjectInfo, Paths, RequestDetail,
                RequestEvent, RequestObject, RequestRef, RingRef, Worker,
            },
            object::{SockAddr, Text},
        },
    };

    /// xorshift64*: the same events on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn coin(&mut self) -> bool {
            self.below(2) == 0
        }
        fn pick<T: Clone>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize].clone()
        }
        fn maybe<T>(&mut self, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
            if self.coin() { Some(value(self)) } else { None }
        }
        /// Small, large, negative-as-unsigned and extreme values.
        fn u64(&mut self) -> u64 {
            match self.below(4) {
                0 => self.below(10),
                1 => self.below(100_000),
                2 => u64::MAX - self.below(3),
                _ => self.next(),
            }
        }
        fn u32(&mut self) -> u32 {
            self.u64() as u32
        }
        fn i32(&mut self) -> i32 {
            match self.below(5) {
                0 => -(self.below(4200) as i32),
                1 => i32::MIN,
                _ => self.u64() as i32,
            }
        }
    }

    const NAMES: &[&[u8]] = &[
        b"uringtrace",
        b"",
        b"fifteen-bytes-x",
        b"a\n\"\\\x1b[31m\x7f",
        b"\xff\xfeok",
        "\u{9b}x\u{2028}\u{e9}".as_bytes(),
        b"iou-wrk-42",
    ];

    fn bytes(rng: &mut Rng) -> Vec<u8> {
        let mut b = rng.pick(NAMES).to_vec();
        b.extend_from_slice(rng.pick(&[&b"/tmp/f"[..], b"/a/\"b\"\\c", b"\xc3"]));
        b
    }

    fn task(rng: &mut Rng) -> Task {
        let comm = Comm::from_kernel(rng.pick(NAMES));
        // Half the events from a few threads, in runs and interleaved, so
        // the task cache is hit, missed and refreshed: by the same pid with
        // another tid, uid or name (a thread renamed, a setuid).
        let (pid, tid, uid, gid) = match rng.below(8) {
            0..=3 => {
                let pid = 100 + rng.below(2) as u32;
                let tid = pid + rng.below(2) as u32;
                (pid, tid, rng.below(2) as u32, 0)
            }
            _ => (rng.u32(), rng.u32(), rng.u32(), rng.u32()),
        };
        Task {
            // Some within one second, to reuse the cached date.
            ts_ns: match rng.below(4) {
                0 | 1 => 1_000_000_000 + rng.below(1000) * 1000,
                2 => rng.next(),
                _ => 0,
            },
            pid,
            tid,
            uid,
            gid,
            comm_bytes: comm,
            context: (rng.below(4) == 0).then(|| {
                Arc::new(ProcessContext {
                    ppid: rng.maybe(Rng::u32),
                    exe: rng.maybe(bytes),
                    cgroup: rng.maybe(bytes),
                    cgroup_id: rng.maybe(Rng::u64),
                    container_id: rng.maybe(|_| "ab".repeat(32)),
                    pid_ns: rng.maybe(Rng::u64),
                    mnt_ns: rng.maybe(Rng::u64),
                })
            }),
        }
    }

    fn request(rng: &mut Rng) -> RequestRef {
        RequestRef {
            id: rng.maybe(Rng::u64),
            user_data: rng.u64(),
            opcode: rng.maybe(|r| r.pick(&[0, op::OPENAT, op::CONNECT, 60, 250])),
            sqe_flags: rng.maybe(|r| r.next() as u8),
        }
    }

    fn text(rng: &mut Rng) -> Text {
        if rng.below(4) == 0 {
            Text::Fault(rng.pick(&[2, 14, 9999]))
        } else {
            Text::Read {
                bytes: bytes(rng),
                truncated: rng.coin(),
            }
        }
    }

    fn object(rng: &mut Rng) -> ObjectInfo {
        if rng.below(4) == 0 {
            return ObjectInfo::Missing(Arc::from("no BTF for \"io_kiocb\"\n"));
        }
        ObjectInfo::Decoded(Box::new(RequestObject {
            opcode: rng.pick(&[op::OPENAT, op::OPENAT2, op::CONNECT, op::READV, 0]),
            fd: rng.maybe(Rng::i32),
            fixed_file: rng.coin(),
            dfd: rng.maybe(|r| r.pick(&[-100, 3])),
            dfd2: rng.maybe(|r| r.pick(&[-100, 4])),
            path: rng.maybe(text),
            path2: rng.maybe(text),
            addr: rng.maybe(|r| match r.below(3) {
                0 => SockAddr::Known {
                    family: "AF_INET6",
                    addr: "[::1]:80".to_string(),
                },
                1 => SockAddr::Other {
                    family: r.u32() as u16,
                },
                _ => SockAddr::Fault(14),
            }),
            op_flags: rng.maybe(|r| r.pick(&[0, 0o102, 0o40_000_000, u64::MAX])),
            mode: rng.maybe(Rng::u64),
            len: rng.maybe(Rng::u64),
            off: rng.maybe(Rng::u64),
        }))
    }

    fn creds(rng: &mut Rng) -> CredsInfo {
        if rng.coin() {
            CredsInfo::Read(Creds {
                uid: rng.u32(),
                gid: rng.u32(),
                euid: rng.u32(),
                egid: rng.u32(),
            })
        } else {
            CredsInfo::Missing(Arc::from("reading the request's struct cred failed"))
        }
    }

    fn completion(rng: &mut Rng) -> Completion {
        Completion {
            request: rng.maybe(request),
            matched: rng.pick(&[Match::Request, Match::UserData, Match::None]),
            user_data: rng.u64(),
            res: rng.i32(),
            cflags: rng.maybe(|r| {
                let any = r.next() as u32;
                r.pick(&[0, 1, 2, 3, 4, 8, 0x10, 0x8000, 0x002a_0001, any])
            }),
            extra: rng.maybe(|r| (r.u64(), r.u64())),
            lost: rng.coin(),
            terminal: rng.coin(),
            cqes: rng.u32(),
            latency_ns: rng.maybe(Rng::u64),
            paths: {
                let mut p = Paths::default();
                for path in [
                    Paths::ASYNC,
                    Paths::POLL,
                    Paths::TASK_WORK,
                    Paths::DEFERRED,
                    Paths::LINKED,
                ] {
                    if rng.below(3) == 0 {
                        p.insert(path);
                    }
                }
                p
            },
            object: rng.maybe(object),
            creds: rng.maybe(creds),
        }
    }

    fn detail(rng: &mut Rng, kind: u64) -> RequestDetail {
        match kind {
            0 => RequestDetail::RingCreate {
                fd: rng.i32(),
                sq_entries: rng.u32(),
                cq_entries: rng.u32(),
                flags: rng.u32(),
            },
            1 => RequestDetail::RingRegister {
                opcode: rng.pick(&[0, 1, 20, 1 << 31, 999]),
                nr_files: rng.u32(),
                nr_bufs: rng.u32(),
                ret: i64::from(rng.i32()),
            },
            2..=4 => RequestDetail::Submit {
                request: request(rng),
                req_flags: rng.u64(),
                sq_thread: rng.coin(),
                force_nonblock: rng.maybe(Rng::coin),
                object: rng.maybe(object),
                creds: rng.maybe(creds),
                hook: rng.maybe(|r| r.pick(&["kprobe:io_issue_sqe", "kprobe:?"])),
            },
            5..=7 => RequestDetail::Complete(completion(rng)),
            8 => RequestDetail::CqeOverflow(completion(rng)),
            9 => RequestDetail::Failed {
                request: request(rng),
                sqe: FailedSqe {
                    opcode: rng.next() as u8,
                    flags: rng.next() as u8,
                    ioprio: rng.next() as u8,
                    off: rng.u64(),
                    addr: rng.u64(),
                    len: rng.u32(),
                    op_flags: rng.u32(),
                    buf_index: rng.next() as u16,
                    personality: rng.next() as u16,
                    file_index: rng.u32(),
                    addr3: rng.u64(),
                },
                error: rng.i32(),
            },
            10 => RequestDetail::Async {
                request: request(rng),
                req_flags: rng.u64(),
                hashed: rng.maybe(Rng::coin),
            },
            11 => RequestDetail::PollArm {
                request: request(rng),
                mask: rng.i32(),
                events: rng.i32(),
            },
            12 => RequestDetail::TaskAdd {
                request: request(rng),
                mask: rng.i32(),
            },
            13 => RequestDetail::Defer {
                request: request(rng),
            },
            14 => RequestDetail::Link {
                request: request(rng),
                target: rng.maybe(request),
            },
            15 => RequestDetail::FailLink {
                request: request(rng),
                next: rng.maybe(request),
            },
            16 => RequestDetail::CqringWait {
                min_events: rng.i32(),
            },
            17 => RequestDetail::TaskWorkRun {
                count: rng.u32(),
                loops: rng.maybe(Rng::u32),
            },
            18 => RequestDetail::LocalWorkRun {
                count: rng.i32(),
                loops: rng.u32(),
            },
            19 => RequestDetail::ShortWrite {
                fpos: rng.u64(),
                wanted: rng.u64(),
                got: rng.u64(),
            },
            _ => RequestDetail::FileGet {
                request: request(rng),
                fd: rng.i32(),
            },
        }
    }

    fn request_event(rng: &mut Rng) -> RequestEvent {
        let kind = rng.below(21);
        RequestEvent {
            task: task(rng),
            worker: rng.pick(&[None, Some(Worker::IoWq), Some(Worker::SqPoll)]),
            ring: rng.maybe(|r| RingRef {
                id: r.u32(),
                fd: r.maybe(Rng::i32),
                owner: r.maybe(Rng::u32),
                setup_flags: r.maybe(|r| {
                    let any = r.u32();
                    r.pick(&[0, 2, 1 << 11, any])
                }),
            }),
            detail: detail(rng, kind),
        }
    }

    fn read<T>(rng: &mut Rng, value: impl FnOnce(&mut Rng) -> T) -> Read<T> {
        match rng.below(5) {
            0 => Read::None,
            1 => Read::SizeMismatch,
            2 => Read::Fault(rng.pick(&[14, 9999])),
            _ => Read::Ok(value(rng)),
        }
    }

    fn params(rng: &mut Rng) -> Params {
        Params {
            sq_entries: rng.u32(),
            cq_entries: rng.u32(),
            flags: rng.u32(),
            sq_thread_cpu: rng.u32(),
            sq_thread_idle: rng.u32(),
            features: rng.u32(),
            wq_fd: rng.u32(),
        }
    }

    fn syscall_event(rng: &mut Rng) -> SyscallEvent {
        let call = match rng.below(4) {
            0 => Call::Setup(SetupCall {
                entries: rng.u32(),
                params_ptr: rng.u64(),
                params: read(rng, params),
                params_out: read(rng, params),
            }),
            1 => Call::Register(RegisterCall {
                fd: rng.u32(),
                opcode: rng.pick(&[0, 1, 20, 1 << 31, 999]),
                arg: rng.u64(),
                nr_args: rng.u32(),
            }),
            _ => Call::Enter(EnterCall {
                fd: rng.u32(),
                to_submit: rng.u32(),
                min_complete: rng.u32(),
                flags: {
                    let any = rng.u32();
                    rng.pick(&[0, 1, 0x10, 0x1f, any])
                },
                argp: rng.u64(),
                argsz: rng.u64(),
                arg: match rng.below(3) {
                    0 => EnterArgument::Sigset(read(rng, Rng::u64)),
                    1 => EnterArgument::Ext(read(rng, |r| GeteventsArg {
                        sigmask_ptr: r.u64(),
                        sigmask_sz: r.u32(),
                        min_wait_usec: r.u32(),
                        ts_ptr: r.u64(),
                        sigmask: read(r, Rng::u64),
                        ts: read(r, |r| Timespec {
                            tv_sec: r.u64() as i64,
                            tv_nsec: r.u64() as i64,
                        }),
                    })),
                    _ => EnterArgument::ExtReg { offset: rng.u64() },
                },
            }),
        };
        SyscallEvent {
            task: task(rng),
            outcome: Outcome {
                ret: {
                    let any = rng.u64() as i64;
                    rng.pick(&[0, -1, -4095, -4096, i64::MIN, any])
                },
                duration_ns: rng.u64(),
                entry_missing: rng.below(5) == 0,
            },
            call,
        }
    }

    /// Fails unless some line had each of `fields`: the generator must
    /// reach the rare parts.
    fn covered(lines: &str, fields: &[&str]) {
        for field in fields {
            assert!(lines.contains(field), "no line had {field}");
        }
    }

    fn same(ours: &[u8], reference: &[u8], what: &dyn std::fmt::Debug) {
        assert_eq!(
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(reference),
            "{what:#?}"
        );
    }

    #[test]
    fn request_lines_match_their_serde_definition() {
        let clock = WallClock::now();
        let tasks = TaskCache::default();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut ours, mut reference) = (Vec::new(), Vec::new());
        let mut seen = String::new();
        for _ in 0..20_000 {
            let ev = request_event(&mut rng);
            ours.clear();
            reference.clear();
            json_request::write(&ev, &clock, &tasks, &mut ours);
            json_request::write_reference(&ev, &clock, &mut reference);
            same(&ours, &reference, &ev);
            seen.push_str(&String::from_utf8_lossy(&ours));
        }
        covered(
            &seen,
            &[
                "\"comm_hex\"",
                "\"exe_hex\"",
                "\"container_id\"",
                "\"worker\":\"sqpoll\"",
                "\"sqpoll\":null",
                "\"sqpoll\":true",
                "\"sqe_flag_names\":[\"IOSQE_FIXED_FILE\"",
                "\"0x",
                "\"errno\":\"ENOENT\"",
                "\"buffer_id\"",
                "\"route\":[]",
                "\"route\":[\"inline\",\"linked\"]",
                "\"extra2\"",
                "\"lost\":true",
                "\"decode_error\"",
                "\"path_hex\"",
                "\"new_path_truncated\"",
                "\"open_flag_names\"",
                "\"addr_errno\"",
                "\"creds\":{\"decoded\":true",
                "\"force_nonblock\"",
                "\"hook\"",
                "\"addr3\"",
                "\"event\":\"task_work_run\"",
                "\\u001b",
                "\\u009b",
            ],
        );
    }

    #[test]
    fn syscall_lines_match_their_serde_definition() {
        let clock = WallClock::now();
        let tasks = TaskCache::default();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut ours, mut reference) = (Vec::new(), Vec::new());
        let mut seen = String::new();
        for _ in 0..20_000 {
            let ev = syscall_event(&mut rng);
            ours.clear();
            reference.clear();
            json::write(&ev, &clock, &tasks, &mut ours);
            json::write_reference(&ev, &clock, &mut reference);
            same(&ours, &reference, &ev);
            seen.push_str(&String::from_utf8_lossy(&ours));
        }
        covered(
            &seen,
            &[
                "\"flag_names\":[\"IORING_ENTER_GETEVENTS\"",
                "\"signals\"",
                "\"tv_nsec\"",
                "\"kind\":\"ext_arg_reg\"",
                "\"read_errno\"",
                "\"params_out\":{",
                "\"params_errno\"",
                "\"use_registered_ring\"",
                "\"entry_missing\":true}",
                "\"errno\":\"EPERM\"",
            ],
        );
    }

    #[test]
    fn lines_are_appended_to_what_the_buffer_holds() {
        let clock = WallClock::now();
        let mut rng = Rng(7);
        let mut out = b"before\n".to_vec();
        let ev = request_event(&mut rng);
        json_request::write(&ev, &clock, &TaskCache::default(), &mut out);
        let mut expected = b"before\n".to_vec();
        json_request::write_reference(&ev, &clock, &mut expected);
        same(&out, &expected, &ev);
    }
}
