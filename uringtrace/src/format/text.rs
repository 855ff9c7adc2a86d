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
        Call, Comm, EnterArgument, EnterCall, GeteventsArg, Read, RegisterCall, SetupCall,
        SyscallEvent, Task,
    },
};

/// `TIME PID/TID COMM`, the start of every text line.
pub(super) fn task_prefix(task: &Task, clock: &WallClock) -> String {
    let mut line = String::with_capacity(160);
    let _ = write!(
        line,
        "{} {}/{} {}",
        clock.local_hms(task.ts_ns),
        task.pid,
        task.tid,
        printable(&task.comm_bytes),
    );
    line
}

pub fn write(ev: &SyscallEvent, clock: &WallClock, out: &mut Vec<u8>) {
    let mut line = task_prefix(&ev.task, clock);
    let _ = write!(line, " {}(", ev.call.name());
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

/// comm is chosen by the traced process: show it so that nothing in it acts
/// on the terminal and every byte can be read back. Printable UTF-8 is shown
/// as is and `\` as `\\`; every other byte (C0 and C1 controls, DEL,
/// invalid UTF-8, and the invisible characters that reorder or hide text)
/// as `\xNN`.
pub(super) fn printable(comm: &Comm) -> String {
    printable_bytes(comm.as_bytes())
}

/// Any bytes a traced process chose (a name, a path), shown as
/// [`printable`] shows a command name.
pub(crate) fn printable_bytes(bytes: &[u8]) -> String {
    let mut shown = String::with_capacity(bytes.len());
    let hex = |bytes: &[u8], shown: &mut String| {
        for b in bytes {
            let _ = write!(shown, "\\x{b:02x}");
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                shown.push_str("\\\\");
            } else if c.is_control() || hides_text(c) {
                hex(c.encode_utf8(&mut [0; 4]).as_bytes(), &mut shown);
            } else {
                shown.push(c);
            }
        }
        hex(chunk.invalid(), &mut shown);
    }
    shown
}

/// Format characters that are invisible or reorder what follows them
/// (bidirectional overrides and isolates, zero-width characters): a name
/// made of them could pass for another on screen.
fn hides_text(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        let shown = |raw: &[u8]| printable(&Comm::from_kernel(raw));
        assert_eq!(shown(b"nginx: worker"), "nginx: worker");
        assert_eq!(shown(b"a\nb\rc\x7f"), "a\\x0ab\\x0dc\\x7f");
        assert_eq!(shown(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(shown(b"q\"\\x"), "q\"\\\\x");
        assert_eq!(shown(b"\xff\xfe"), "\\xff\\xfe");
        // C1 CSI (U+009B) and a right-to-left override (U+202E).
        assert_eq!(shown("\u{9b}1m".as_bytes()), "\\xc2\\x9b1m");
        assert_eq!(shown("a\u{202e}b".as_bytes()), "a\\xe2\\x80\\xaeb");
        assert_eq!(shown("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
