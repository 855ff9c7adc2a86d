//! NDJSON for request events (docs/events.md, "Request events"). The field
//! names are the ground-truth report's: `opcode`, `user_data`, `sqe_flags`,
//! `res`, `ring_fd`.

use serde::Serialize;

use std::borrow::Cow;

use uringtrace_common::request_object::op;

#[cfg(test)]
use super::ndjson::{CommFields, ProcessFields, SCHEMA_VERSION};
use super::{
    json_fields::{Fields, TaskCache, key},
    ndjson::lossless_text,
};
#[cfg(test)]
use crate::clock::Rfc3339;
use crate::{
    clock::WallClock,
    decode::{
        cqe_flags::{IORING_CQE_F_BUFFER, IORING_CQE_FLAGS, cqe_buffer_id},
        errno_names::errno_name,
        flag_set::FlagNames,
        open_flags::open_flag_names,
        register_opcodes::IO_URING_REGISTER_OPCODES,
        setup_flags::IO_URING_SETUP_FLAGS,
        sqe_flags::IOSQE_FLAGS,
        sqe_opcodes::op_name,
    },
    requests::{
        event::{
            Completion, CredsInfo, Match, ObjectInfo, RequestDetail, RequestEvent, RequestRef,
        },
        object::{SockAddr, Text},
    },
};

#[cfg(test)]
#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    event: &'static str,
    ts_ns: u64,
    time: Rfc3339,
    pid: u32,
    tid: u32,
    uid: u32,
    gid: u32,
    #[serde(flatten)]
    comm: CommFields<'a>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_fd: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqpoll: Option<Option<bool>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    request: Option<Request>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    completion: Option<Cqe>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    other: Option<Other>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    object: Option<Object<'a>>,
    /// Under a registered personality: whose credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<&'a CredsInfo>,
}

/// What a request touches (submit, and its last CQE). Paths and addresses
/// are the traced process's bytes: kept exact (`*_hex` when not UTF-8).
#[derive(Serialize, Default)]
struct Object<'a> {
    decoded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fd: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed_file: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dfd: Option<i32>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    path: Option<PathFields<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_dfd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_errno: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr_errno: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_flags: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_flag_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op_flags: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

#[derive(Serialize)]
struct PathFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_errno: Option<&'static str>,
}

/// (text, hex when not UTF-8, truncated, errno of a failed read).
type TextParts<'a> = (
    Option<Cow<'a, str>>,
    Option<String>,
    Option<bool>,
    Option<&'static str>,
);

fn text_parts(t: Option<&Text>) -> TextParts<'_> {
    match t {
        None => (None, None, None, None),
        Some(Text::Fault(e)) => (None, None, None, Some(errno_name(*e).unwrap_or("E?"))),
        Some(Text::Read { bytes, truncated }) => {
            let (text, hex) = lossless_text(bytes);
            (Some(text), hex, truncated.then_some(true), None)
        }
    }
}

fn object(info: &ObjectInfo) -> Object<'_> {
    let o = match info {
        ObjectInfo::Missing(why) => {
            return Object {
                decoded: false,
                decode_error: Some(why),
                ..Object::default()
            };
        }
        ObjectInfo::Decoded(o) => o,
    };
    let (path, path_hex, path_truncated, path_errno) = text_parts(o.path.as_ref());
    let (new_path, new_path_hex, new_path_truncated, new_path_errno) = text_parts(o.path2.as_ref());
    let is_open = matches!(o.opcode, op::OPENAT | op::OPENAT2);
    let (addr, family, addr_errno) = match &o.addr {
        None => (None, None, None),
        Some(SockAddr::Known { family, addr }) => {
            (Some(addr.clone()), Some(family.to_string()), None)
        }
        Some(SockAddr::Other { family }) => (None, Some(family.to_string()), None),
        Some(SockAddr::Fault(e)) => (None, None, Some(errno_name(*e).unwrap_or("E?"))),
    };
    Object {
        decoded: true,
        decode_error: None,
        fd: o.fd.map(Some),
        fixed_file: o.fd.map(|_| o.fixed_file),
        dfd: o.dfd,
        path: (path.is_some() || path_errno.is_some()).then_some(PathFields {
            path,
            path_hex,
            path_truncated,
            path_errno,
        }),
        new_dfd: o.dfd2,
        new_path,
        new_path_hex,
        new_path_truncated,
        new_path_errno,
        addr,
        family,
        addr_errno,
        open_flags: o.op_flags.filter(|_| is_open),
        open_flag_names: o.op_flags.filter(|_| is_open).map(open_flag_names),
        op_flags: o.op_flags.filter(|_| !is_open),
        mode: o.mode,
        len: o.len,
        offset: o.off,
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct Request {
    req: Option<u64>,
    user_data: u64,
    opcode: Option<u8>,
    opcode_name: Option<&'static str>,
    sqe_flags: Option<u8>,
    sqe_flag_names: FlagNames,
}

#[cfg(test)]
fn request(r: &RequestRef) -> Request {
    Request {
        req: r.id,
        user_data: r.user_data,
        opcode: r.opcode,
        opcode_name: r.opcode.and_then(op_name),
        sqe_flags: r.sqe_flags,
        sqe_flag_names: r
            .sqe_flags
            .map_or(FlagNames::EMPTY, |f| IOSQE_FLAGS.name_list(u64::from(f))),
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct Cqe {
    res: i32,
    errno: Option<&'static str>,
    cflags: Option<u32>,
    cflag_names: FlagNames,
    #[serde(skip_serializing_if = "Option::is_none")]
    buffer_id: Option<u16>,
    more: bool,
    cqes: u32,
    latency_ns: Option<u64>,
    route: Vec<&'static str>,
    matched: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra1: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra2: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lost: bool,
}

fn errno_of(res: i64) -> Option<&'static str> {
    (-4095..0)
        .contains(&res)
        .then(|| errno_name((-res) as i32))
        .flatten()
}

#[cfg(test)]
fn cqe(c: &Completion) -> Cqe {
    Cqe {
        res: c.res,
        errno: errno_of(i64::from(c.res)),
        cflags: c.cflags,
        cflag_names: cflag_names(c),
        buffer_id: cqe_buffer_id(c.cflags.unwrap_or(0)),
        more: !c.terminal,
        cqes: c.cqes,
        latency_ns: c.latency_ns,
        route: if c.request.is_some() {
            c.paths.names()
        } else {
            Vec::new()
        },
        matched: matched_name(c.matched),
        extra1: c.extra.map(|e| e.0),
        extra2: c.extra.map(|e| e.1),
        lost: c.lost,
    }
}

/// The fields of the other kinds, each under its own names.
#[derive(Serialize)]
#[serde(untagged)]
enum Other {
    RingCreate {
        fd: i32,
        sq_entries: u32,
        cq_entries: u32,
        flags: u32,
        flag_names: Vec<String>,
    },
    RingRegister {
        opcode: u32,
        opcode_name: Option<&'static str>,
        nr_files: u32,
        nr_bufs: u32,
        ret: i64,
        errno: Option<&'static str>,
    },
    Submit {
        req_flags: u64,
        sq_thread: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        force_nonblock: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hook: Option<&'static str>,
    },
    Failed {
        error: i32,
        errno: Option<&'static str>,
        ioprio: u8,
        off: u64,
        addr: u64,
        len: u32,
        op_flags: u32,
        buf_index: u16,
        personality: u16,
        file_index: u32,
        addr3: u64,
    },
    Async {
        req_flags: u64,
        hashed: Option<bool>,
    },
    PollArm {
        mask: i32,
        events: i32,
    },
    TaskAdd {
        mask: i32,
    },
    Link {
        target_req: Option<u64>,
    },
    FailLink {
        next_req: Option<u64>,
    },
    CqringWait {
        min_events: i32,
    },
    TaskWorkRun {
        count: u32,
        loops: Option<u32>,
    },
    LocalWorkRun {
        count: i32,
        loops: u32,
    },
    ShortWrite {
        fpos: u64,
        wanted: u64,
        got: u64,
    },
    FileGet {
        fd: i32,
    },
}

/// The fields of the kinds other than submit and CQEs, and of a submit.
fn other(detail: &RequestDetail) -> Option<Other> {
    Some(match detail {
        RequestDetail::RingCreate {
            fd,
            sq_entries,
            cq_entries,
            flags,
        } => Other::RingCreate {
            fd: *fd,
            sq_entries: *sq_entries,
            cq_entries: *cq_entries,
            flags: *flags,
            flag_names: IO_URING_SETUP_FLAGS.names(u64::from(*flags)),
        },
        RequestDetail::RingRegister {
            opcode,
            nr_files,
            nr_bufs,
            ret,
        } => Other::RingRegister {
            opcode: *opcode,
            opcode_name: IO_URING_REGISTER_OPCODES.name(u64::from(*opcode)),
            nr_files: *nr_files,
            nr_bufs: *nr_bufs,
            ret: *ret,
            errno: errno_of(*ret),
        },
        RequestDetail::Submit {
            req_flags,
            sq_thread,
            force_nonblock,
            hook,
            ..
        } => Other::Submit {
            req_flags: *req_flags,
            sq_thread: *sq_thread,
            force_nonblock: *force_nonblock,
            hook: *hook,
        },
        RequestDetail::Complete(_) | RequestDetail::CqeOverflow(_) => return None,
        RequestDetail::Failed { sqe, error, .. } => Other::Failed {
            error: *error,
            errno: errno_of(i64::from(*error)),
            ioprio: sqe.ioprio,
            off: sqe.off,
            addr: sqe.addr,
            len: sqe.len,
            op_flags: sqe.op_flags,
            buf_index: sqe.buf_index,
            personality: sqe.personality,
            file_index: sqe.file_index,
            addr3: sqe.addr3,
        },
        RequestDetail::Async {
            req_flags, hashed, ..
        } => Other::Async {
            req_flags: *req_flags,
            hashed: *hashed,
        },
        RequestDetail::PollArm { mask, events, .. } => Other::PollArm {
            mask: *mask,
            events: *events,
        },
        RequestDetail::TaskAdd { mask, .. } => Other::TaskAdd { mask: *mask },
        RequestDetail::Defer { .. } => return None,
        RequestDetail::Link { target, .. } => Other::Link {
            target_req: target.and_then(|t| t.id),
        },
        RequestDetail::FailLink { next, .. } => Other::FailLink {
            next_req: next.and_then(|t| t.id),
        },
        RequestDetail::CqringWait { min_events } => Other::CqringWait {
            min_events: *min_events,
        },
        RequestDetail::TaskWorkRun { count, loops } => Other::TaskWorkRun {
            count: *count,
            loops: *loops,
        },
        RequestDetail::LocalWorkRun { count, loops } => Other::LocalWorkRun {
            count: *count,
            loops: *loops,
        },
        RequestDetail::ShortWrite { fpos, wanted, got } => Other::ShortWrite {
            fpos: *fpos,
            wanted: *wanted,
            got: *got,
        },
        RequestDetail::FileGet { fd, .. } => Other::FileGet { fd: *fd },
    })
}

/// The `matched` field of a CQE.
fn matched_name(m: Match) -> &'static str {
    match m {
        Match::Request => "req",
        Match::UserData => "user_data",
        Match::None => "none",
    }
}

/// IORING_CQE_F_* names of a CQE's flags: with a buffer, its id in the
/// upper bits is not flags.
fn cflag_names(c: &Completion) -> FlagNames {
    c.cflags.map_or(FlagNames::EMPTY, |flags| {
        let names_bits = if flags & IORING_CQE_F_BUFFER != 0 {
            flags & 0xffff
        } else {
            flags
        };
        IORING_CQE_FLAGS.name_list(u64::from(names_bits))
    })
}

/// Appends the event's line: the bytes of [`write_reference`] (the tests
/// compare them), written by hand (see json_fields).
pub fn write(ev: &RequestEvent, clock: &WallClock, tasks: &TaskCache, out: &mut Vec<u8>) {
    let mut f = Fields::open(out, ev.detail.name());
    f.task(&ev.task, clock, tasks);
    if let Some(w) = ev.worker {
        f.name(key!("worker"), w.name());
    }
    if let Some(r) = ev.ring {
        f.u64(key!("ring"), u64::from(r.id));
        f.opt_i64(key!("ring_fd"), r.fd.map(i64::from));
    }
    if let RequestDetail::Submit { sq_thread, .. } = &ev.detail
        && let Some(r) = ev.ring
    {
        f.opt_bool(key!("sqpoll"), r.sqpoll().or(sq_thread.then_some(true)));
    }
    match (&ev.detail, ev.detail.request()) {
        (_, Some(r)) => write_request(&mut f, r),
        (RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c), None) => {
            // Unmatched: still say which user_data the CQE carried.
            write_request(
                &mut f,
                &RequestRef {
                    id: None,
                    user_data: c.user_data,
                    opcode: None,
                    sqe_flags: None,
                },
            );
        }
        (_, None) => {}
    }
    match &ev.detail {
        RequestDetail::Submit {
            req_flags,
            sq_thread,
            force_nonblock,
            object: info,
            creds,
            hook,
            ..
        } => {
            f.u64(key!("req_flags"), *req_flags);
            f.bool(key!("sq_thread"), *sq_thread);
            if let Some(n) = force_nonblock {
                f.bool(key!("force_nonblock"), *n);
            }
            if let Some(h) = hook {
                f.name(key!("hook"), h);
            }
            write_object(&mut f, info.as_ref(), creds.as_ref());
        }
        RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c) => {
            write_cqe(&mut f, c);
            write_object(&mut f, c.object.as_ref(), c.creds.as_ref());
        }
        detail => {
            if let Some(other) = other(detail) {
                f.flatten(&other);
            }
        }
    }
    f.close();
}

fn write_request(f: &mut Fields, r: &RequestRef) {
    f.opt_u64(key!("req"), r.id);
    f.u64(key!("user_data"), r.user_data);
    f.opt_u64(key!("opcode"), r.opcode.map(u64::from));
    f.opt_name(key!("opcode_name"), r.opcode.and_then(op_name));
    f.opt_u64(key!("sqe_flags"), r.sqe_flags.map(u64::from));
    f.flag_names(
        key!("sqe_flag_names"),
        r.sqe_flags
            .map_or(FlagNames::EMPTY, |f| IOSQE_FLAGS.name_list(u64::from(f))),
    );
}

fn write_cqe(f: &mut Fields, c: &Completion) {
    f.i64(key!("res"), i64::from(c.res));
    f.opt_name(key!("errno"), errno_of(i64::from(c.res)));
    f.opt_u64(key!("cflags"), c.cflags.map(u64::from));
    f.flag_names(key!("cflag_names"), cflag_names(c));
    if let Some(id) = cqe_buffer_id(c.cflags.unwrap_or(0)) {
        f.u64(key!("buffer_id"), u64::from(id));
    }
    f.bool(key!("more"), !c.terminal);
    f.u64(key!("cqes"), u64::from(c.cqes));
    f.opt_u64(key!("latency_ns"), c.latency_ns);
    let route = c.request.is_some().then(|| c.paths.each_name());
    f.names(key!("route"), route.into_iter().flatten());
    f.name(key!("matched"), matched_name(c.matched));
    if let Some((e1, e2)) = c.extra {
        f.u64(key!("extra1"), e1);
        f.u64(key!("extra2"), e2);
    }
    if c.lost {
        f.bool(key!("lost"), true);
    }
}

/// What the request touches, and the credentials it runs under: rare
/// enough to go through serde.
fn write_object(f: &mut Fields, info: Option<&ObjectInfo>, creds: Option<&CredsInfo>) {
    if let Some(info) = info {
        f.flatten(&object(info));
    }
    if let Some(creds) = creds {
        f.value(key!("creds"), creds);
    }
}

/// The definition of a request event's line, through serde: what
/// [`write`] must write, byte for byte.
#[cfg(test)]
pub fn write_reference(ev: &RequestEvent, clock: &WallClock, out: &mut Vec<u8>) {
    let mut line = Line {
        schema: SCHEMA_VERSION,
        event: ev.detail.name(),
        ts_ns: ev.task.ts_ns,
        time: clock.timestamp(ev.task.ts_ns),
        pid: ev.task.pid,
        tid: ev.task.tid,
        uid: ev.task.uid,
        gid: ev.task.gid,
        comm: CommFields::new(&ev.task.comm_bytes),
        process: ev.task.context.as_deref().map(ProcessFields::new),
        worker: ev.worker.map(|w| w.name()),
        ring: ev.ring.map(|r| r.id),
        ring_fd: ev.ring.map(|r| r.fd),
        sqpoll: None,
        request: None,
        completion: None,
        other: other(&ev.detail),
        object: None,
        creds: None,
    };
    line.request = ev.detail.request().map(request);
    match &ev.detail {
        RequestDetail::Submit {
            sq_thread,
            object: info,
            creds,
            ..
        } => {
            line.object = info.as_ref().map(object);
            line.creds = creds.as_ref();
            line.sqpoll = ev.ring.map(|r| r.sqpoll().or(sq_thread.then_some(true)));
        }
        RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c) => {
            line.completion = Some(cqe(c));
            line.object = c.object.as_ref().map(object);
            line.creds = c.creds.as_ref();
            if line.request.is_none() {
                // Unmatched: still say which user_data the CQE carried.
                line.request = Some(Request {
                    req: None,
                    user_data: c.user_data,
                    opcode: None,
                    opcode_name: None,
                    sqe_flags: None,
                    sqe_flag_names: FlagNames::EMPTY,
                });
            }
        }
        _ => {}
    }
    super::ndjson::write_line(&line, out);
}
