//! Text lines for request events, in the system calls' layout:
//! `TIME PID/TID COMM event ring=N req=N OPCODE(user_data=U, flags) ...`.

use std::fmt::Write as _;

use uringtrace_common::request_object::op;

use super::text::{printable_bytes, strerror, task_prefix};
use crate::{
    clock::WallClock,
    decode::{
        cqe_flags::{cqe_buffer_id, render_cqe_flags},
        errno_names::errno_name,
        open_flags::{AT_FDCWD, open_flag_names},
        register_opcodes::render_register_opcode,
        setup_flags::IO_URING_SETUP_FLAGS,
        sqe_flags::render_sqe_flags,
        sqe_opcodes::render_op_short,
    },
    requests::{
        event::{Completion, ObjectInfo, RequestDetail, RequestEvent, RequestRef},
        object::{SockAddr, Text},
    },
};

pub fn write(ev: &RequestEvent, clock: &WallClock, out: &mut Vec<u8>) {
    let mut line = task_prefix(&ev.task, clock);
    if let Some(w) = ev.worker {
        let _ = write!(line, " [{}]", w.name());
    }
    let _ = write!(line, " {}", ev.detail.name());
    if let Some(r) = ev.ring {
        let _ = write!(line, " ring={}", r.id);
        if let Some(fd) = r.fd {
            let _ = write!(line, "(fd {fd})");
        }
    }
    match &ev.detail {
        RequestDetail::RingCreate {
            fd,
            sq_entries,
            cq_entries,
            flags,
        } => {
            let _ = write!(
                line,
                " fd={fd} sq_entries={sq_entries} cq_entries={cq_entries} flags={}",
                IO_URING_SETUP_FLAGS.render(u64::from(*flags))
            );
        }
        RequestDetail::RingRegister {
            opcode,
            nr_files,
            nr_bufs,
            ret,
        } => {
            let _ = write!(
                line,
                " {} nr_files={nr_files} nr_bufs={nr_bufs} = {}",
                render_register_opcode(*opcode),
                result(*ret)
            );
        }
        RequestDetail::Submit {
            request,
            sq_thread,
            object: info,
            creds,
            ..
        } => {
            req(request, &mut line);
            if let Some(info) = info {
                object(info, &mut line);
            }
            if let Some(creds) = creds {
                let _ = write!(line, "{creds}");
            }
            if *sq_thread {
                line.push_str(" [sq thread]");
            }
        }
        RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c) => completion(c, &mut line),
        RequestDetail::Failed {
            request,
            sqe,
            error,
        } => {
            req(request, &mut line);
            let _ = write!(
                line,
                " off={} addr={:#x} len={} op_flags={:#x} buf_index={} personality={} file_index={} = {}",
                sqe.off,
                sqe.addr,
                sqe.len,
                sqe.op_flags,
                sqe.buf_index,
                sqe.personality,
                sqe.file_index,
                result(i64::from(*error))
            );
        }
        RequestDetail::Async {
            request, hashed, ..
        } => {
            req(request, &mut line);
            if *hashed == Some(true) {
                line.push_str(" hashed");
            }
        }
        RequestDetail::PollArm {
            request,
            mask,
            events,
        } => {
            req(request, &mut line);
            let _ = write!(line, " mask={mask:#x} events={events:#x}");
        }
        RequestDetail::TaskAdd { request, mask } => {
            req(request, &mut line);
            let _ = write!(line, " mask={mask:#x}");
        }
        RequestDetail::Defer { request } => req(request, &mut line),
        RequestDetail::Link { request, target } => {
            req(request, &mut line);
            line.push_str(" after ");
            id(target.as_ref().and_then(|t| t.id), &mut line);
        }
        RequestDetail::FailLink { request, next } => {
            req(request, &mut line);
            line.push_str(" cancels ");
            id(next.as_ref().and_then(|t| t.id), &mut line);
        }
        RequestDetail::CqringWait { min_events } => {
            let _ = write!(line, " min_events={min_events}");
        }
        RequestDetail::TaskWorkRun { count, loops } => {
            let _ = write!(line, " count={count}");
            if let Some(l) = loops {
                let _ = write!(line, " loops={l}");
            }
        }
        RequestDetail::LocalWorkRun { count, loops } => {
            let _ = write!(line, " count={count} loops={loops}");
        }
        RequestDetail::ShortWrite { fpos, wanted, got } => {
            let _ = write!(line, " fpos={fpos} wanted={wanted} got={got}");
        }
        RequestDetail::FileGet { request, fd } => {
            req(request, &mut line);
            let _ = write!(line, " fd={fd}");
        }
    }
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}

fn id(id: Option<u64>, line: &mut String) {
    match id {
        Some(id) => {
            let _ = write!(line, "req={id}");
        }
        None => line.push_str("req=?"),
    }
}

/// ` req=N OPCODE(user_data=U, flags=...)`.
fn req(r: &RequestRef, line: &mut String) {
    line.push(' ');
    id(r.id, line);
    let op = r.opcode.map_or_else(|| "?".to_string(), render_op_short);
    let _ = write!(line, " {op}(user_data={}", r.user_data);
    if let Some(f) = r.sqe_flags.filter(|&f| f != 0) {
        let _ = write!(line, ", {}", render_sqe_flags(f));
    }
    line.push(')');
}

/// ` path="..." fd=3 ...`: the object in strace's manner, every byte a
/// traced process chose escaped.
fn object(info: &ObjectInfo, line: &mut String) {
    let o = match info {
        ObjectInfo::Missing(why) => {
            let _ = write!(line, " [not decoded: {why}]");
            return;
        }
        ObjectInfo::Decoded(o) => o,
    };
    let dirfd = |d: i32| {
        if d == AT_FDCWD {
            "AT_FDCWD".to_string()
        } else {
            d.to_string()
        }
    };
    if let Some(fd) = o.fd {
        let _ = write!(
            line,
            " {}={fd}",
            if o.fixed_file { "fixed_file" } else { "fd" }
        );
    }
    let text = |label: &str, dfd: Option<i32>, t: &Option<Text>, line: &mut String| match t {
        Some(Text::Read { bytes, truncated }) => {
            if let Some(d) = dfd.filter(|&d| d != AT_FDCWD) {
                let _ = write!(line, " {label}_dfd={}", dirfd(d));
            }
            let _ = write!(
                line,
                " {label}=\"{}\"{}",
                printable_bytes(bytes),
                if *truncated { "..." } else { "" }
            );
        }
        Some(Text::Fault(e)) => {
            let _ = write!(line, " {label}=<{}>", errno_name(*e).unwrap_or("E?"));
        }
        None => {}
    };
    text("path", o.dfd, &o.path, line);
    text("new_path", o.dfd2, &o.path2, line);
    match &o.addr {
        Some(SockAddr::Known { addr, .. }) => {
            let _ = write!(line, " addr={}", printable_bytes(addr.as_bytes()));
        }
        Some(SockAddr::Other { family }) => {
            let _ = write!(line, " addr=<family {family}>");
        }
        Some(SockAddr::Fault(e)) => {
            let _ = write!(line, " addr=<{}>", errno_name(*e).unwrap_or("E?"));
        }
        None => {}
    }
    if matches!(o.opcode, op::OPENAT | op::OPENAT2)
        && let Some(flags) = o.op_flags
    {
        let _ = write!(line, " flags={}", open_flag_names(flags).join("|"));
    } else if let Some(flags) = o.op_flags.filter(|&f| f != 0) {
        let _ = write!(line, " flags={flags:#x}");
    }
    if let Some(mode) = o.mode.filter(|&m| m != 0) {
        let _ = write!(line, " mode={mode:#o}");
    }
    if let Some(off) = o.off {
        let _ = write!(line, " off={off}");
    }
    if let Some(len) = o.len {
        let _ = write!(line, " len={len}");
    }
}

fn completion(c: &Completion, line: &mut String) {
    match &c.request {
        Some(r) => req(r, line),
        None => {
            let _ = write!(line, " req=? ?(user_data={})", c.user_data);
        }
    }
    if let Some(info) = &c.object {
        object(info, line);
    }
    if let Some(creds) = &c.creds {
        let _ = write!(line, "{creds}");
    }
    let _ = write!(line, " = {}", result(i64::from(c.res)));
    if let Some(flags) = c.cflags.filter(|&f| f != 0) {
        let _ = write!(line, " cflags={}", render_cqe_flags(flags));
        if let Some(b) = cqe_buffer_id(flags) {
            let _ = write!(line, " buf={b}");
        }
    }
    if let Some((e1, e2)) = c.extra {
        let _ = write!(line, " extra={e1:#x},{e2:#x}");
    }
    if c.lost {
        line.push_str(" LOST");
    }
    if c.cqes > 1 {
        let _ = write!(line, " cqe#{}", c.cqes);
    }
    if let Some(l) = c.latency_ns {
        let _ = write!(
            line,
            " <{}.{:06}> [{}]",
            l / 1_000_000_000,
            l % 1_000_000_000 / 1000,
            c.paths.names().join(",")
        );
    }
}

fn result(ret: i64) -> String {
    if (-4095..0).contains(&ret) {
        let errno = (-ret) as i32;
        format!(
            "{ret} {} ({})",
            errno_name(errno).unwrap_or("E?"),
            strerror(errno)
        )
    } else {
        ret.to_string()
    }
}
