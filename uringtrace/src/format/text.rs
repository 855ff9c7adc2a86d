//! strace-like text: `TIME PID/TID COMM call(args) = ret <duration>`.

use std::fmt::Write as _;

use crate::{
    clock::WallClock,
    decode::{
        enter_flags::IO_URING_ENTER_FLAGS, errno_names::errno_name,
        register_opcodes::render_register_opcode, setup_features::IO_URING_FEATURES,
        setup_flags::IO_URING_SETUP_FLAGS, signal_names::render_sigmask,
    },
    event::{
        Call, EnterArgument, EnterCall, GeteventsArg, Read, RegisterCall, SetupCall, SyscallEvent,
    },
};

pub fn write(ev: &SyscallEvent, clock: &WallClock, out: &mut Vec<u8>) {
    let mut line = String::with_capacity(160);
    let _ = write!(
        line,
        "{} {}/{} {} {}(",
        clock.local_hms(ev.task.ts_ns),
        ev.task.pid,
        ev.task.tid,
        printable(&ev.task.comm),
        ev.call.name()
    );
    if ev.outcome.entry_missing {
        line.push_str("<entry not seen>");
    } else {
        match &ev.call {
            Call::Enter(c) => enter_args(c, &mut line),
            Call::Register(c) => register_args(c, &mut line),
            Call::Setup(c) => setup_args(c, &mut line),
        }
    }
    line.push_str(") = ");
    match ev.outcome.errno() {
        Some(errno) => {
            let _ = write!(
                line,
                "-1 {} ({})",
                errno_name(errno).unwrap_or("E?"),
                strerror(errno)
            );
        }
        None => {
            let _ = write!(line, "{}", ev.outcome.ret);
        }
    }
    if !ev.outcome.entry_missing {
        let d = ev.outcome.duration_ns;
        let _ = write!(
            line,
            " <{}.{:06}>",
            d / 1_000_000_000,
            d % 1_000_000_000 / 1000
        );
    }
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}

/// comm is chosen by the traced process: keep terminal control characters
/// out of the output.
pub(super) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub(super) fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

fn ptr(p: u64) -> String {
    if p == 0 {
        "NULL".into()
    } else {
        format!("{p:#x}")
    }
}

/// What a failed or skipped read shows instead of the value.
fn unread<T>(r: &Read<T>, p: u64) -> String {
    match r {
        Read::Fault(e) => format!("{} /* {} */", ptr(p), errno_name(*e).unwrap_or("fault")),
        Read::SizeMismatch => format!("{} /* not read: size rejected */", ptr(p)),
        Read::None | Read::Ok(_) => ptr(p),
    }
}

fn enter_args(c: &EnterCall, s: &mut String) {
    if c.registered_ring() {
        let _ = write!(s, "ring_index={}", c.fd);
    } else {
        let _ = write!(s, "{}", c.fd);
    }
    let _ = write!(
        s,
        ", {}, {}, {}, ",
        c.to_submit,
        c.min_complete,
        IO_URING_ENTER_FLAGS.render(u64::from(c.flags))
    );
    match &c.arg {
        EnterArgument::Sigset(Read::Ok(mask)) => s.push_str(&render_sigmask(*mask)),
        EnterArgument::Sigset(r) => s.push_str(&unread(r, c.argp)),
        EnterArgument::Ext(Read::Ok(ext)) => getevents_arg(ext, s),
        EnterArgument::Ext(r) => s.push_str(&unread(r, c.argp)),
        EnterArgument::ExtReg { offset } => {
            let _ = write!(s, "{{reg_wait_offset={offset}}}");
        }
    }
    let _ = write!(s, ", {}", c.argsz);
}

fn getevents_arg(a: &GeteventsArg, s: &mut String) {
    s.push_str("{sigmask=");
    match &a.sigmask {
        Read::Ok(mask) => s.push_str(&render_sigmask(*mask)),
        r => s.push_str(&unread(r, a.sigmask_ptr)),
    }
    let _ = write!(
        s,
        ", sigmask_sz={}, min_wait_usec={}, ts=",
        a.sigmask_sz, a.min_wait_usec
    );
    match &a.ts {
        Read::Ok(ts) => {
            let _ = write!(s, "{{tv_sec={}, tv_nsec={}}}", ts.tv_sec, ts.tv_nsec);
        }
        r => s.push_str(&unread(r, a.ts_ptr)),
    }
    s.push('}');
}

fn register_args(c: &RegisterCall, s: &mut String) {
    let _ = write!(
        s,
        "{}, {}, {}, {}",
        c.fd,
        render_register_opcode(c.opcode),
        ptr(c.arg),
        c.nr_args
    );
}

fn setup_args(c: &SetupCall, s: &mut String) {
    let _ = write!(s, "{}, ", c.entries);
    match &c.params {
        Read::Ok(p) => {
            let _ = write!(
                s,
                "{{flags={}, sq_thread_cpu={}, sq_thread_idle={}",
                IO_URING_SETUP_FLAGS.render(u64::from(p.flags)),
                p.sq_thread_cpu,
                p.sq_thread_idle
            );
            if let Read::Ok(out) = &c.params_out {
                let _ = write!(
                    s,
                    ", sq_entries={}, cq_entries={}, features={}",
                    out.sq_entries,
                    out.cq_entries,
                    IO_URING_FEATURES.render(u64::from(out.features))
                );
            } else {
                let _ = write!(s, ", cq_entries={}", p.cq_entries);
            }
            let _ = write!(s, ", wq_fd={}}}", p.wq_fd);
        }
        r => s.push_str(&unread(r, c.params_ptr)),
    }
}
