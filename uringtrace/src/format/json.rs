//! NDJSON: one object per call. The schema is documented in docs/events.md;
//! field names are shared with the workload engine's ground-truth report.

use serde::Serialize;

use super::json_fields::{Fields, TaskCache, key};
#[cfg(test)]
use super::ndjson::{CommFields, ProcessFields, SCHEMA_VERSION};
#[cfg(test)]
use crate::clock::Rfc3339;
use crate::{
    clock::WallClock,
    decode::{
        enter_flags::IO_URING_ENTER_FLAGS,
        errno_names::errno_name,
        flag_set::FlagNames,
        register_opcodes::{IO_URING_REGISTER_OPCODES, decode_register_opcode},
        setup_features::IO_URING_FEATURES,
        setup_flags::IO_URING_SETUP_FLAGS,
        signal_names::sigmask_names,
    },
    event::{Call, EnterArgument, Read, SyscallEvent},
};

#[cfg(test)]
#[derive(Serialize)]
struct Event<'a> {
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
    ret: i64,
    errno: Option<&'static str>,
    duration_ns: u64,
    entry_missing: bool,
    #[serde(flatten)]
    call: Option<Args>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Args {
    Enter {
        fd: u32,
        registered_ring: bool,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        flag_names: FlagNames,
        argp: u64,
        argsz: u64,
        arg: Arg,
    },
    Register {
        fd: u32,
        opcode: u32,
        opcode_name: Option<&'static str>,
        use_registered_ring: bool,
        arg: u64,
        nr_args: u32,
    },
    Setup {
        entries: u32,
        params: u64,
        params_status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params_errno: Option<&'static str>,
        flags: Option<u32>,
        flag_names: Vec<String>,
        sq_thread_cpu: Option<u32>,
        sq_thread_idle: Option<u32>,
        cq_entries: Option<u32>,
        wq_fd: Option<u32>,
        params_out: Option<ParamsOut>,
    },
}

#[derive(Serialize)]
struct ParamsOut {
    sq_entries: u32,
    cq_entries: u32,
    features: u32,
    feature_names: Vec<String>,
}

/// How a pointer read at entry went: the object says what was read and when
/// (`snapshot`), since the caller can change the memory afterwards.
#[derive(Serialize)]
struct Arg {
    kind: &'static str,
    snapshot: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_errno: Option<&'static str>,
    #[serde(flatten)]
    value: ArgValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ArgValue {
    None {},
    Sigset {
        sigmask: u64,
        signals: Vec<String>,
    },
    Ext {
        sigmask_ptr: u64,
        sigmask_sz: u32,
        min_wait_usec: u32,
        ts_ptr: u64,
        ts: Option<Ts>,
        ts_status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sigmask: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signals: Option<Vec<String>>,
        sigmask_status: &'static str,
    },
    Reg {
        offset: u64,
    },
}

#[derive(Serialize)]
struct Ts {
    tv_sec: i64,
    tv_nsec: i64,
}

fn status<T>(r: &Read<T>) -> (&'static str, Option<&'static str>) {
    match r {
        Read::None => ("null", None),
        Read::Ok(_) => ("ok", None),
        Read::SizeMismatch => ("size_mismatch", None),
        Read::Fault(e) => ("fault", errno_name(*e)),
    }
}

fn arg(a: &EnterArgument) -> Arg {
    let snapshot = "syscall_entry";
    match a {
        EnterArgument::Sigset(r) => {
            let (status, read_errno) = status(r);
            Arg {
                kind: "sigset",
                snapshot,
                status,
                read_errno,
                value: match r {
                    Read::Ok(mask) => ArgValue::Sigset {
                        sigmask: *mask,
                        signals: sigmask_names(*mask),
                    },
                    _ => ArgValue::None {},
                },
            }
        }
        EnterArgument::Ext(r) => {
            let (status, read_errno) = status(r);
            Arg {
                kind: "ext_arg",
                snapshot,
                status,
                read_errno,
                value: match r {
                    Read::Ok(ext) => ArgValue::Ext {
                        sigmask_ptr: ext.sigmask_ptr,
                        sigmask_sz: ext.sigmask_sz,
                        min_wait_usec: ext.min_wait_usec,
                        ts_ptr: ext.ts_ptr,
                        ts: ext.ts.ok().map(|t| Ts {
                            tv_sec: t.tv_sec,
                            tv_nsec: t.tv_nsec,
                        }),
                        ts_status: status_name(&ext.ts),
                        sigmask: ext.sigmask.ok().copied(),
                        signals: ext.sigmask.ok().map(|m| sigmask_names(*m)),
                        sigmask_status: status_name(&ext.sigmask),
                    },
                    _ => ArgValue::None {},
                },
            }
        }
        EnterArgument::ExtReg { offset } => Arg {
            kind: "ext_arg_reg",
            snapshot,
            status: "not_read",
            read_errno: None,
            value: ArgValue::Reg { offset: *offset },
        },
    }
}

fn status_name<T>(r: &Read<T>) -> &'static str {
    status(r).0
}

fn args(call: &Call) -> Args {
    match call {
        Call::Enter(c) => Args::Enter {
            fd: c.fd,
            registered_ring: c.registered_ring(),
            to_submit: c.to_submit,
            min_complete: c.min_complete,
            flags: c.flags,
            flag_names: IO_URING_ENTER_FLAGS.name_list(u64::from(c.flags)),
            argp: c.argp,
            argsz: c.argsz,
            arg: arg(&c.arg),
        },
        Call::Register(c) => {
            let (opcode, use_registered_ring) = decode_register_opcode(c.opcode);
            Args::Register {
                fd: c.fd,
                opcode: c.opcode,
                opcode_name: IO_URING_REGISTER_OPCODES.name(u64::from(opcode)),
                use_registered_ring,
                arg: c.arg,
                nr_args: c.nr_args,
            }
        }
        Call::Setup(c) => {
            let (params_status, params_errno) = status(&c.params);
            let p = c.params.ok();
            Args::Setup {
                entries: c.entries,
                params: c.params_ptr,
                params_status,
                params_errno,
                flags: p.map(|p| p.flags),
                flag_names: p
                    .map(|p| IO_URING_SETUP_FLAGS.names(u64::from(p.flags)))
                    .unwrap_or_default(),
                sq_thread_cpu: p.map(|p| p.sq_thread_cpu),
                sq_thread_idle: p.map(|p| p.sq_thread_idle),
                cq_entries: p.map(|p| p.cq_entries),
                wq_fd: p.map(|p| p.wq_fd),
                params_out: c.params_out.ok().map(|o| ParamsOut {
                    sq_entries: o.sq_entries,
                    cq_entries: o.cq_entries,
                    features: o.features,
                    feature_names: IO_URING_FEATURES.names(u64::from(o.features)),
                }),
            }
        }
    }
}

/// Appends the event's line: the bytes of [`write_reference`] (the tests
/// compare them), written by hand (see json_fields).
pub fn write(ev: &SyscallEvent, clock: &WallClock, tasks: &TaskCache, out: &mut Vec<u8>) {
    let mut f = Fields::open(out, ev.call.name());
    f.task(&ev.task, clock, tasks);
    f.i64(key!("ret"), ev.outcome.ret);
    f.opt_name(key!("errno"), ev.outcome.errno().and_then(errno_name));
    f.u64(key!("duration_ns"), ev.outcome.duration_ns);
    f.bool(key!("entry_missing"), ev.outcome.entry_missing);
    match &ev.call {
        _ if ev.outcome.entry_missing => {}
        // io_uring_enter, one per batch of requests: by hand as well.
        Call::Enter(c) => {
            f.u64(key!("fd"), u64::from(c.fd));
            f.bool(key!("registered_ring"), c.registered_ring());
            f.u64(key!("to_submit"), u64::from(c.to_submit));
            f.u64(key!("min_complete"), u64::from(c.min_complete));
            f.u64(key!("flags"), u64::from(c.flags));
            f.flag_names(
                key!("flag_names"),
                IO_URING_ENTER_FLAGS.name_list(u64::from(c.flags)),
            );
            f.u64(key!("argp"), c.argp);
            f.u64(key!("argsz"), c.argsz);
            f.value(key!("arg"), &arg(&c.arg));
        }
        call => f.flatten(&args(call)),
    }
    f.close();
}

/// The definition of a system call event's line, through serde: what
/// [`write`] must write, byte for byte.
#[cfg(test)]
pub fn write_reference(ev: &SyscallEvent, clock: &WallClock, out: &mut Vec<u8>) {
    let event = Event {
        schema: SCHEMA_VERSION,
        event: ev.call.name(),
        ts_ns: ev.task.ts_ns,
        time: clock.timestamp(ev.task.ts_ns),
        pid: ev.task.pid,
        tid: ev.task.tid,
        uid: ev.task.uid,
        gid: ev.task.gid,
        comm: CommFields::new(&ev.task.comm_bytes),
        process: ev.task.context.as_deref().map(ProcessFields::new),
        ret: ev.outcome.ret,
        errno: ev.outcome.errno().and_then(errno_name),
        duration_ns: ev.outcome.duration_ns,
        entry_missing: ev.outcome.entry_missing,
        call: (!ev.outcome.entry_missing).then(|| args(&ev.call)),
    };
    super::ndjson::write_line(&event, out);
}
