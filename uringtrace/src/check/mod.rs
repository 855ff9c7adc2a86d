//! `uringtrace check`: probe the running kernel and report what uringtrace
//! can see here. Every probe asks the kernel for real (creates the map,
//! loads and attaches the program, reads the file) and every refusal is a
//! result in the report, never an early exit: the point is to say exactly
//! which step this kernel refuses.

mod kprobes;
mod probes;
mod report;
mod text;

use std::{
    ffi::{CStr, CString},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use uringtrace_common::{issue::ISSUE_HOOKS, request::REQUEST_TRACEPOINTS};

use crate::btf::{BtfKind, BtfTypes, VMLINUX_BTF};

use self::{
    kprobes::SYSCALL_PREFIX,
    probes::ProgramSpec,
    report::{
        Btf, EventPlan, HookKind, Kernel, KprobePmu, KprobeTarget, Outcome, Presence, Privileges,
        ProgramProbe, ProgramTypes, Report, SCHEMA_VERSION, SkippedKprobe, SubmitKprobes, Tracefs,
        TracefsStatus, TracepointStatus, Verdict, Who,
    },
};
use crate::{
    requests::object::{ObjectSupport, creds_layout},
    selection::EVENT_NAMES,
    tracefs,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// An aligned report for people.
    Text,
    /// One JSON document; its structure is in docs/check.md.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Report format: `text` or `json` (one JSON document, documented in
    /// docs/check.md).
    #[arg(short = 'f', long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

/// Probes, prints the report, and fails when the io_uring system calls
/// cannot be traced here.
pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let report = probe_kernel();
    let rendered = match args.format {
        CheckFormat::Text => text::render(&report),
        CheckFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(&report).context("serializing the report")?;
            json.push('\n');
            json
        }
    };
    io::stdout()
        .lock()
        .write_all(rendered.as_bytes())
        .context("writing the report to standard output")?;
    if !report.verdict.syscalls_traceable {
        bail!(
            "io_uring system calls cannot be traced here: {}",
            report.verdict.problems.join("; ")
        );
    }
    Ok(0)
}

/// The system calls uringtrace traces, as event names.
const SYSCALL_EVENTS: [&str; 3] = ["io_uring_setup", "io_uring_enter", "io_uring_register"];

/// Tracepoints uringtrace attaches besides the `io_uring:*` ones.
const BASE_TRACEPOINTS: [(&str, &[&str]); 8] = [
    ("syscalls", &["sys_enter_io_uring_setup"]),
    ("syscalls", &["sys_exit_io_uring_setup"]),
    ("syscalls", &["sys_enter_io_uring_enter"]),
    ("syscalls", &["sys_exit_io_uring_enter"]),
    ("syscalls", &["sys_enter_io_uring_register"]),
    ("syscalls", &["sys_exit_io_uring_register"]),
    // The in-kernel process filter follows forks and exits with these.
    ("sched", &["sched_process_fork"]),
    ("sched", &["sched_process_exit"]),
];

/// Kernel functions a kprobe fallback would hook, with what for; the
/// system call entry points get the architecture's prefix.
fn kprobe_target_list() -> Vec<(String, &'static str)> {
    let mut list: Vec<(String, &'static str)> = SYSCALL_EVENTS
        .iter()
        .map(|call| {
            (
                format!("{SYSCALL_PREFIX}{call}"),
                "system call entry and return (kprobe + kretprobe)",
            )
        })
        .collect();
    list.extend([
        (
            "io_issue_sqe".to_string(),
            "issues each request: `submit` without its tracepoint",
        ),
        (
            "io_poll_issue".to_string(),
            "issues requests retried after a poll wakeup",
        ),
        (
            "__io_submit_sqe".to_string(),
            "issues each request on kernels without io_issue_sqe",
        ),
    ]);
    list
}

/// Request events whose kprobe fallback exists: the functions of the
/// issue path whose kernel-version window holds `release`, in order
/// (uringtrace_common::issue::ISSUE_HOOKS).
fn request_kprobe_symbols(event: &str, release: &str) -> Vec<String> {
    match event {
        "submit" => ISSUE_HOOKS
            .iter()
            .filter(|h| crate::attach::issue_hook_usable(h, release, "").is_ok())
            .map(|h| h.symbol.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether uringtrace attaches the kprobe fallback of `event`: the system
/// calls' (`--attach kprobe`, on the x86-64 wrappers, whose pt_regs it
/// reads) and the submissions' (on the issue path).
fn kprobe_implemented(event: &str) -> bool {
    (SYSCALL_EVENTS.contains(&event) && cfg!(target_arch = "x86_64")) || event == "submit"
}

/// What `--attach kprobe` takes the submissions from here: each issue-path
/// kprobe attach would use, and why the others are skipped.
fn plan_submit_kprobes(
    release: &str,
    tracepoints: &[TracepointStatus],
    pmu: &KprobePmu,
    targets: &[KprobeTarget],
) -> SubmitKprobes {
    let mut plan = SubmitKprobes {
        targets: Vec::new(),
        skipped: Vec::new(),
        fallback: None,
    };
    for hook in &ISSUE_HOOKS {
        let obstacle = crate::attach::issue_hook_usable(hook, release, "")
            .err()
            .or_else(|| kprobe_obstacle(hook.symbol, pmu, targets));
        match obstacle {
            None => plan.targets.push(hook.symbol.to_string()),
            Some(reason) => plan.skipped.push(SkippedKprobe {
                symbol: hook.symbol,
                reason,
            }),
        }
    }
    if plan.targets.is_empty() {
        let submit = request_tracepoint_index("submit")
            .and_then(|index| tracepoints.get(BASE_TRACEPOINTS.len() + index))
            .filter(|tp| tp.is_present());
        plan.fallback = Some(submit.map_or_else(
            || "none: submissions are not traced".to_string(),
            |tp| format!("tracepoint {}", tp.qualified()),
        ));
    }
    plan
}

fn probe_kernel() -> Report {
    crate::privileges::raise_memlock_limit();
    let privileges = probe_privileges();
    let btf_types = Path::new(VMLINUX_BTF)
        .exists()
        .then(|| BtfTypes::read(Path::new(VMLINUX_BTF)));
    let btf = Btf {
        path: VMLINUX_BTF,
        present: btf_types.is_some(),
        types: match &btf_types {
            Some(Ok(types)) => Some(types.len()),
            _ => None,
        },
        error: match &btf_types {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        },
    };
    let btf_types = match btf_types {
        Some(Ok(types)) => Ok(types),
        Some(Err(e)) => Err(format!("vmlinux BTF unusable: {e}")),
        None => Err(format!("no vmlinux BTF ({VMLINUX_BTF} missing)")),
    };
    let ring_buffer = match probes::create_ringbuf() {
        Ok(_map) => Outcome::Ok,
        Err(e) => Outcome::failed("BPF_MAP_CREATE", &e),
    };
    let (tracefs, tracefs_root) = probe_tracefs();
    let tracepoints = tracepoint_statuses(tracefs_root.as_deref(), &tracefs);
    let kprobe_pmu = match kprobes::pmu_type() {
        Ok(pmu_type) => KprobePmu {
            present: true,
            pmu_type: Some(pmu_type),
            error: None,
        },
        Err(e) => KprobePmu {
            present: Path::new(kprobes::KPROBE_PMU).exists(),
            pmu_type: None,
            error: Some(if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{} missing: this kernel cannot create kprobes (CONFIG_KPROBES, \
                     CONFIG_KPROBE_EVENTS)",
                    kprobes::KPROBE_PMU
                )
            } else {
                format!("{}/type: {}", kprobes::KPROBE_PMU, io_error_text(&e))
            }),
        },
    };
    let kprobe_targets = probe_kprobe_targets();
    let program_types = ProgramTypes {
        tracepoint: probe_tracepoint_program(tracefs_root.as_deref(), &tracepoints),
        tp_btf: probe_tracing_program(
            btf_types.as_ref(),
            &["btf_trace_io_uring_complete"],
            BtfKind::Typedef,
            probes::BPF_TRACE_RAW_TP,
        ),
        fentry: probe_tracing_program(
            btf_types.as_ref(),
            // The system call's entry point first: always a real function,
            // where a static io_uring_setup may be inlined away.
            &[&format!("{SYSCALL_PREFIX}io_uring_setup"), "io_uring_setup"],
            BtfKind::Func,
            probes::BPF_TRACE_FENTRY,
        ),
        kprobe: probe_kprobe_program(&kprobe_pmu, &kprobe_targets),
    };
    let kernel = probe_uname();
    let events = plan_events(
        &kernel.release,
        &tracepoints,
        &tracefs,
        &kprobe_pmu,
        &kprobe_targets,
    );
    let mut events = events;
    if privileges.sufficient {
        request_hooks_in_use(&mut events);
    }
    let submit_kprobe =
        plan_submit_kprobes(&kernel.release, &tracepoints, &kprobe_pmu, &kprobe_targets);
    let verdict = judge(
        &privileges,
        &ring_buffer,
        &tracepoints,
        &program_types,
        &events,
    );
    Report {
        schema_version: SCHEMA_VERSION,
        kernel,
        who: probe_who(btf_types.as_ref()),
        btf,
        privileges,
        ring_buffer,
        tracefs,
        tracepoints,
        program_types,
        kprobe_pmu,
        kprobe_targets,
        events,
        submit_kprobe,
        verdict,
    }
}

/// What attach would set up for `worker` and `creds`, from the same BTF.
fn probe_who(btf: Result<&BtfTypes, &String>) -> Who {
    let task_flags = crate::attach::task_flags_offset(btf);
    let task_layout = crate::attach::task_layout(btf);
    let creds = match btf {
        Ok(btf) => ObjectSupport::of_layout(&creds_layout(btf)),
        Err(why) => ObjectSupport::unavailable(why.clone()),
    };
    Who {
        io_threads: if task_flags.is_ok() {
            "task_flags"
        } else {
            "name"
        },
        task_flags_offset: task_flags.as_ref().ok().copied(),
        io_threads_reason: task_flags.err(),
        creds_bit: creds.creds_mask.map(u64::trailing_zeros),
        creds_readable: creds.creds_missing.is_none(),
        creds_reason: creds.creds_missing,
        header_fields: if task_layout.is_ok() {
            "task_struct"
        } else {
            "helpers"
        },
        header_fields_reason: task_layout.err(),
    }
}

fn probe_uname() -> Kernel {
    // SAFETY: utsname is plain arrays of bytes; all zeroes is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Kernel {
            release: "unknown".into(),
            machine: "unknown".into(),
        };
    }
    let field = |chars: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).collect();
        CStr::from_bytes_until_nul(&bytes)
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".into())
    };
    Kernel {
        release: field(&uts.release),
        machine: field(&uts.machine),
    }
}

fn probe_privileges() -> Privileges {
    let caps = crate::privileges::Capabilities::current();
    Privileges {
        // SAFETY: geteuid has no preconditions.
        euid: unsafe { libc::geteuid() },
        cap_sys_admin: caps.sys_admin,
        cap_bpf: caps.bpf,
        cap_perfmon: caps.perfmon,
        // The tracer's own test, so the two never disagree.
        sufficient: crate::privileges::check().is_ok(),
    }
}

/// Where tracefs is mounted, from /proc/self/mounts.
fn tracefs_mount_point() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let mount_point = fields.nth(1)?;
        (fields.next()? == "tracefs").then(|| mount_point.to_string())
    })
}

/// Finds tracefs as the tracer does (mounting it if nobody has).
fn probe_tracefs() -> (Tracefs, Option<PathBuf>) {
    let mounted_at = tracefs_mount_point();
    match tracefs::root() {
        Ok(root) => (
            Tracefs {
                status: if mounted_at.is_some() {
                    TracefsStatus::Mounted
                } else {
                    TracefsStatus::MountedNow
                },
                path: Some(root.display().to_string()),
                error: None,
            },
            Some(root),
        ),
        Err(err) => {
            // Mounted but closed to us (tracefs is root-only): say so, rather
            // than the mount error of root()'s fallback.
            let denied = mounted_at.and_then(|path| {
                let events = Path::new(&path).join("events");
                match std::fs::read_dir(&events) {
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        Some((path, format!("{}: {}", events.display(), io_error_text(&e))))
                    }
                    _ => None,
                }
            });
            let tracefs = match denied {
                Some((path, why)) => Tracefs {
                    status: TracefsStatus::Unreadable,
                    path: Some(path),
                    error: Some(why),
                },
                None => Tracefs {
                    status: TracefsStatus::Unavailable,
                    path: None,
                    error: Some(err.to_string()),
                },
            };
            (tracefs, None)
        }
    }
}

/// Why tracefs could not be used, in short: the tracefs entry of the
/// report has the details.
fn tracefs_problem(tracefs: &Tracefs) -> &'static str {
    match tracefs.status {
        TracefsStatus::Unreadable => "tracefs unreadable",
        _ => "tracefs unavailable",
    }
}

/// An I/O error without the " (os error N)" std adds to the description.
fn io_error_text(error: &io::Error) -> String {
    let text = error.to_string();
    match error.raw_os_error() {
        Some(n) => text
            .strip_suffix(&format!(" (os error {n})"))
            .map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

fn tracepoint_statuses(root: Option<&Path>, tracefs: &Tracefs) -> Vec<TracepointStatus> {
    let wanted = BASE_TRACEPOINTS
        .into_iter()
        .chain(REQUEST_TRACEPOINTS.iter().map(|tp| ("io_uring", tp.names)));
    wanted
        .map(|(category, names)| {
            let Some(root) = root else {
                return TracepointStatus {
                    category,
                    names,
                    status: Presence::Unknown,
                    name: None,
                    error: Some(tracefs_problem(tracefs).into()),
                };
            };
            for &name in names {
                match std::fs::metadata(root.join("events").join(category).join(name)) {
                    Ok(meta) if meta.is_dir() => {
                        return TracepointStatus {
                            category,
                            names,
                            status: Presence::Present,
                            name: Some(name),
                            error: None,
                        };
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return TracepointStatus {
                            category,
                            names,
                            status: Presence::Unknown,
                            name: None,
                            error: Some(format!("{category}/{name}: {}", io_error_text(&e))),
                        };
                    }
                }
            }
            TracepointStatus {
                category,
                names,
                status: Presence::Absent,
                name: None,
                error: None,
            }
        })
        .collect()
}

fn find_tracepoint<'a>(
    tracepoints: &'a [TracepointStatus],
    category: &str,
    name: &str,
) -> Option<&'a TracepointStatus> {
    tracepoints
        .iter()
        .find(|tp| tp.category == category && tp.names[0] == name)
}

fn probe_kprobe_targets() -> Vec<KprobeTarget> {
    let targets = kprobe_target_list();
    let names: Vec<&str> = targets.iter().map(|(name, _)| name.as_str()).collect();
    let found = std::fs::read_to_string(kprobes::KALLSYMS)
        .ok()
        .map(|text| kprobes::find_symbols(&text, &names));
    let blacklist = std::fs::read_to_string(kprobes::BLACKLIST).ok();
    let blacklisted = blacklist.as_deref().map(kprobes::blacklisted_symbols);
    targets
        .into_iter()
        .map(|(symbol, purpose)| {
            let presence = found.as_ref().and_then(|f| f.get(&symbol));
            KprobeTarget {
                in_kallsyms: found.as_ref().map(|_| presence.is_some_and(|p| p.exact)),
                clones: presence.map(|p| p.clones.clone()).unwrap_or_default(),
                blacklisted: blacklisted
                    .as_ref()
                    .map(|list| list.contains(&symbol.as_str())),
                symbol,
                purpose,
            }
        })
        .collect()
}

fn load_failure(err: probes::LoadError) -> Outcome {
    match Outcome::failed("BPF_PROG_LOAD", &err.error) {
        Outcome::Failed {
            call,
            errno,
            errno_name,
            message,
            ..
        } => Outcome::Failed {
            call,
            errno,
            errno_name,
            message,
            log: err.log,
        },
        other => other,
    }
}

fn not_loaded() -> Outcome {
    Outcome::skipped("the program did not load")
}

/// A tracepoint program on a perf tracepoint event, as uringtrace attaches
/// its programs: the syscall tracepoint if there is one, else any of ours.
fn probe_tracepoint_program(root: Option<&Path>, tracepoints: &[TracepointStatus]) -> ProgramProbe {
    let preferred = find_tracepoint(tracepoints, "syscalls", "sys_enter_io_uring_enter")
        .filter(|tp| tp.is_present());
    let target = preferred.or_else(|| {
        tracepoints
            .iter()
            .find(|tp| tp.category == "io_uring" && tp.is_present())
    });
    let load = probes::load_program(ProgramSpec {
        prog_type: probes::BPF_PROG_TYPE_TRACEPOINT,
        expected_attach_type: 0,
        attach_btf_id: 0,
    });
    let (Some(root), Some(target)) = (root, target) else {
        return ProgramProbe {
            target: None,
            btf_id: None,
            load: load.map_or_else(load_failure, |_| Outcome::Ok),
            attach: Outcome::skipped("no io_uring tracepoint to attach to"),
        };
    };
    let (load, attach) = match load {
        Err(e) => (load_failure(e), not_loaded()),
        Ok(prog) => (Outcome::Ok, attach_to_tracepoint(root, target, &prog)),
    };
    ProgramProbe {
        target: Some(target.qualified()),
        btf_id: None,
        load,
        attach,
    }
}

fn attach_to_tracepoint(
    root: &Path,
    target: &TracepointStatus,
    prog: &std::os::fd::OwnedFd,
) -> Outcome {
    let id_path = root
        .join("events")
        .join(target.category)
        .join(target.name.unwrap_or(target.names[0]))
        .join("id");
    let id = match std::fs::read_to_string(&id_path) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(id) => id,
            Err(e) => return Outcome::skipped(format!("{}: {e}", id_path.display())),
        },
        Err(e) => return Outcome::failed("read tracefs id", &e),
    };
    let event = match probes::open_tracepoint_event(id) {
        Ok(event) => event,
        Err(e) => return Outcome::failed("perf_event_open", &e),
    };
    match probes::set_bpf(&event, prog) {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::failed("PERF_EVENT_IOC_SET_BPF", &e),
    }
}

/// A tracing program (tp_btf or fentry) on the first of `candidates`
/// that vmlinux BTF has as a `kind`.
fn probe_tracing_program(
    btf: Result<&BtfTypes, &String>,
    candidates: &[&str],
    kind: BtfKind,
    attach_type: u32,
) -> ProgramProbe {
    let btf = match btf {
        Ok(btf) => btf,
        Err(why) => {
            return ProgramProbe {
                target: None,
                btf_id: None,
                load: Outcome::skipped(why.clone()),
                attach: not_loaded(),
            };
        }
    };
    let Some((target, btf_id)) = candidates
        .iter()
        .find_map(|name| btf.id_of(name, kind).map(|id| (*name, id)))
    else {
        return ProgramProbe {
            target: None,
            btf_id: None,
            load: Outcome::skipped(format!(
                "vmlinux BTF has no {} {}",
                match kind {
                    BtfKind::Typedef => "typedef",
                    BtfKind::Func => "function",
                },
                candidates.join(" or ")
            )),
            attach: not_loaded(),
        };
    };
    let (load, attach) = match probes::load_program(ProgramSpec {
        prog_type: probes::BPF_PROG_TYPE_TRACING,
        expected_attach_type: attach_type,
        attach_btf_id: btf_id,
    }) {
        Err(e) => (load_failure(e), not_loaded()),
        Ok(prog) => (
            Outcome::Ok,
            match probes::attach_tracing(&prog) {
                Ok(_link) => Outcome::Ok,
                Err(e) => Outcome::failed("BPF_RAW_TRACEPOINT_OPEN", &e),
            },
        ),
    };
    ProgramProbe {
        target: Some(target.to_string()),
        btf_id: Some(btf_id),
        load,
        attach,
    }
}

/// A kprobe program on the io_uring_enter entry point, through the kprobe
/// PMU.
fn probe_kprobe_program(pmu: &KprobePmu, targets: &[KprobeTarget]) -> ProgramProbe {
    let symbol = format!("{SYSCALL_PREFIX}io_uring_enter");
    let target = targets.iter().find(|t| t.symbol == symbol);
    let prog = probes::load_program(ProgramSpec {
        prog_type: probes::BPF_PROG_TYPE_KPROBE,
        expected_attach_type: 0,
        attach_btf_id: 0,
    });
    let (load, attach) = match prog {
        Err(e) => (load_failure(e), not_loaded()),
        Ok(prog) => (
            Outcome::Ok,
            match (pmu.pmu_type, target) {
                (None, _) => Outcome::skipped("no kprobe PMU"),
                (Some(_), Some(t)) if t.in_kallsyms == Some(false) => {
                    Outcome::skipped(format!("{symbol} is not in {}", kprobes::KALLSYMS))
                }
                (Some(pmu_type), _) => attach_kprobe(pmu_type, &symbol, &prog),
            },
        ),
    };
    ProgramProbe {
        target: Some(symbol),
        btf_id: None,
        load,
        attach,
    }
}

fn attach_kprobe(pmu_type: u32, symbol: &str, prog: &std::os::fd::OwnedFd) -> Outcome {
    let Ok(c_symbol) = CString::new(symbol) else {
        return Outcome::skipped(format!("{symbol:?} has a NUL byte"));
    };
    let event = match probes::open_kprobe_event(pmu_type, &c_symbol) {
        Ok(event) => event,
        Err(e) => return Outcome::failed("perf_event_open", &e),
    };
    match probes::set_bpf(&event, prog) {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::failed("PERF_EVENT_IOC_SET_BPF", &e),
    }
}

/// The request tracepoint behind a request event: REQUEST_TRACEPOINTS and
/// the request part of EVENT_NAMES are in the same order (a test holds
/// them to it).
fn request_tracepoint_index(event: &str) -> Option<usize> {
    let position = EVENT_NAMES.iter().position(|name| *name == event)?;
    position
        .checked_sub(SYSCALL_EVENTS.len())
        .filter(|&index| index < REQUEST_TRACEPOINTS.len())
}

/// Which program each request event's tracepoint gets (tp_btf or the
/// perf-event one), found the only sure way: by loading and attaching the
/// tracer's own programs as a session would, with a filter that lets
/// nothing through, then detaching them.
fn request_hooks_in_use(events: &mut [EventPlan]) {
    let opts = crate::attach::AttachOptions {
        filter: crate::attach::ProcessFilter {
            pids: Vec::new(),
            follow_forks: false,
            restrict: true,
        },
        buffer_size: 1 << 16,
        events: crate::selection::EventSelection::ALL,
        ops: None,
        hook_mode: uringtrace_common::hook_mode::FULL,
        summary: uringtrace_common::summary::SUMMARY_OFF,
        task_filter: uringtrace_common::filter::TaskFilter::OFF,
        attach_mode: crate::attach::AttachMode::Tracepoint,
    };
    let attached = match crate::attach::attach(&opts) {
        Ok(attached) => attached,
        Err(e) => {
            for plan in events.iter_mut() {
                if request_tracepoint_index(plan.event).is_some()
                    && plan.hook == HookKind::Tracepoint
                {
                    plan.reason = Some(format!("the tracer's programs did not load: {e:#}"));
                }
            }
            return;
        }
    };
    for plan in events.iter_mut() {
        let Some(index) = request_tracepoint_index(plan.event) else {
            continue;
        };
        if plan.hook != HookKind::Tracepoint {
            continue;
        }
        match &attached.request_hooks[index] {
            Some(crate::attach::RequestHook::TpBtf) => plan.hook = HookKind::TpBtf,
            Some(crate::attach::RequestHook::Tracepoint {
                why_not_tp_btf,
                tp_btf_refused,
            }) => {
                plan.reason = Some(why_not_tp_btf.clone());
                plan.tp_btf_refused = *tp_btf_refused;
            }
            None => {}
        }
    }
    crate::attach::detach(attached.links, attached.ebpf);
}

/// Why a kprobe on `symbol` is not possible, or None when it is.
fn kprobe_obstacle(symbol: &str, pmu: &KprobePmu, targets: &[KprobeTarget]) -> Option<String> {
    if pmu.pmu_type.is_none() {
        return Some("no kprobe PMU".into());
    }
    let Some(target) = targets.iter().find(|t| t.symbol == symbol) else {
        return Some(format!("{symbol} not probed"));
    };
    match (target.in_kallsyms, target.blacklisted) {
        (None, _) => Some(format!("{} unreadable", kprobes::KALLSYMS)),
        (Some(false), _) => Some(format!("{symbol} is not in {}", kprobes::KALLSYMS)),
        (Some(true), Some(true)) => Some(format!("{symbol} is on the kprobe blacklist")),
        (Some(true), _) => None,
    }
}

fn plan_events(
    release: &str,
    tracepoints: &[TracepointStatus],
    tracefs: &Tracefs,
    pmu: &KprobePmu,
    targets: &[KprobeTarget],
) -> Vec<EventPlan> {
    let tracefs_why = || format!("tracepoints unknown ({})", tracefs_problem(tracefs));
    EVENT_NAMES
        .iter()
        .map(|&event| {
            // The tracepoints the event needs, its hook's targets among them,
            // and the kprobe symbols (each with its kretprobe for system
            // calls) that could stand in. The system calls are hooked all
            // the same way, as the attach mode `auto` does: tracepoints
            // when the kernel has them all, else kprobes.
            let (needed, own, kprobe_symbols): (Vec<&TracepointStatus>, Vec<String>, Vec<String>) =
                if SYSCALL_EVENTS.contains(&event) {
                    (
                        tracepoints
                            .iter()
                            .filter(|tp| tp.category == "syscalls")
                            .collect(),
                        ["sys_enter_", "sys_exit_"]
                            .iter()
                            .map(|dir| format!("syscalls:{dir}{event}"))
                            .collect(),
                        vec![format!("{SYSCALL_PREFIX}{event}")],
                    )
                } else {
                    let tracepoint = request_tracepoint_index(event)
                        .and_then(|index| tracepoints.get(BASE_TRACEPOINTS.len() + index));
                    (
                        tracepoint.into_iter().collect(),
                        tracepoint.map(|tp| tp.qualified()).into_iter().collect(),
                        request_kprobe_symbols(event, release),
                    )
                };
            if !needed.is_empty() && needed.iter().all(|tp| tp.is_present()) {
                return EventPlan {
                    event,
                    hook: HookKind::Tracepoint,
                    targets: own,
                    implemented: true,
                    reason: None,
                    tp_btf_refused: false,
                };
            }
            let tracepoint_why = if needed.iter().any(|tp| tp.status == Presence::Unknown) {
                tracefs_why()
            } else if SYSCALL_EVENTS.contains(&event) && needed.iter().all(|tp| !tp.is_present()) {
                "no syscalls:sys_{enter,exit}_io_uring_* tracepoints (CONFIG_FTRACE_SYSCALLS)"
                    .to_string()
            } else {
                let missing: Vec<String> = needed
                    .iter()
                    .filter(|tp| !tp.is_present())
                    .map(|tp| format!("{}:{}", tp.category, tp.names.join("/")))
                    .collect();
                format!("no {} tracepoint", missing.join(" or "))
            };
            let mut kprobe_whys = Vec::new();
            for symbol in &kprobe_symbols {
                match kprobe_obstacle(symbol, pmu, targets) {
                    None => {
                        let mut hook_targets = vec![symbol.clone()];
                        if SYSCALL_EVENTS.contains(&event) {
                            hook_targets.push(format!("{symbol}%return"));
                        } else {
                            // Every issue function is probed, not only
                            // the first.
                            hook_targets = kprobe_symbols
                                .iter()
                                .filter(|s| kprobe_obstacle(s, pmu, targets).is_none())
                                .cloned()
                                .collect();
                        }
                        return EventPlan {
                            event,
                            hook: HookKind::Kprobe,
                            targets: hook_targets,
                            implemented: kprobe_implemented(event),
                            reason: (!kprobe_implemented(event)).then(|| {
                                format!(
                                    "{tracepoint_why}, and uringtrace does not attach its \
                                     kprobe yet"
                                )
                            }),
                            tp_btf_refused: false,
                        };
                    }
                    Some(why) if !kprobe_whys.contains(&why) => kprobe_whys.push(why),
                    Some(_) => {}
                }
            }
            let reason = if kprobe_whys.is_empty() {
                tracepoint_why
            } else {
                format!("{tracepoint_why}; {}", kprobe_whys.join(", "))
            };
            EventPlan {
                event,
                hook: HookKind::None,
                targets: Vec::new(),
                implemented: false,
                reason: Some(reason),
                tp_btf_refused: false,
            }
        })
        .collect()
}

fn judge(
    privileges: &Privileges,
    ring_buffer: &Outcome,
    tracepoints: &[TracepointStatus],
    program_types: &ProgramTypes,
    events: &[EventPlan],
) -> Verdict {
    let mut problems = Vec::new();
    if !privileges.sufficient {
        problems.push(
            "not enough privilege: uringtrace loads eBPF programs, which needs root (or \
             CAP_BPF and CAP_PERFMON), as do most probes of this check; run it with sudo"
                .to_string(),
        );
    }
    // Without privilege the kernel's refusals below say nothing new.
    if privileges.sufficient {
        if let Outcome::Failed { .. } = ring_buffer {
            problems.push(format!(
                "the kernel refused a BPF ring buffer ({}); uringtrace needs Linux 5.8+",
                text::outcome(ring_buffer)
            ));
        }
        // The program type the system calls' hook needs must load and attach.
        for (hook, name, probe) in [
            (
                HookKind::Tracepoint,
                "tracepoint",
                &program_types.tracepoint,
            ),
            (HookKind::Kprobe, "kprobe", &program_types.kprobe),
        ] {
            let used = events
                .iter()
                .any(|e| SYSCALL_EVENTS.contains(&e.event) && e.hook == hook && e.implemented);
            if !used {
                continue;
            }
            for (step, outcome) in [("load", &probe.load), ("attach", &probe.attach)] {
                if let Outcome::Failed { .. } = outcome {
                    problems.push(format!(
                        "a {name} program failed to {step}: {}",
                        text::outcome(outcome)
                    ));
                }
            }
        }
    }
    for tp in tracepoints.iter().filter(|tp| tp.category == "sched") {
        if tp.status == Presence::Absent {
            problems.push(format!(
                "no {} tracepoint, which the process filter needs",
                tp.qualified()
            ));
        }
    }
    // One line per distinct reason, naming the calls it stops.
    let mut by_reason: Vec<(String, Vec<&str>)> = Vec::new();
    for plan in events
        .iter()
        .filter(|e| SYSCALL_EVENTS.contains(&e.event) && !e.traceable())
    {
        let reason = plan.reason.clone().unwrap_or_default();
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, calls)) => calls.push(plan.event),
            None => by_reason.push((reason, vec![plan.event])),
        }
    }
    for (reason, calls) in by_reason {
        problems.push(format!("{}: {reason}", calls.join(", ")));
    }
    let requests: Vec<&EventPlan> = events
        .iter()
        .filter(|e| !SYSCALL_EVENTS.contains(&e.event))
        .collect();
    Verdict {
        syscalls_traceable: problems.is_empty(),
        request_events_traceable: requests.iter().filter(|e| e.traceable()).count(),
        request_events: requests.len(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use uringtrace_common::RecordKind;

    use super::*;

    #[test]
    fn request_events_map_to_their_tracepoints() {
        let expected = [
            ("ring_create", RecordKind::RingCreate),
            ("ring_register", RecordKind::RingRegister),
            ("submit", RecordKind::Submit),
            ("complete", RecordKind::Complete),
            ("failed", RecordKind::ReqFailed),
            ("cqe_overflow", RecordKind::CqeOverflow),
            ("async", RecordKind::QueueAsyncWork),
            ("poll_arm", RecordKind::PollArm),
            ("task_add", RecordKind::TaskAdd),
            ("defer", RecordKind::Defer),
            ("link", RecordKind::Link),
            ("fail_link", RecordKind::FailLink),
            ("cqring_wait", RecordKind::CqringWait),
            ("task_work_run", RecordKind::TaskWorkRun),
            ("local_work_run", RecordKind::LocalWorkRun),
            ("short_write", RecordKind::ShortWrite),
            ("file_get", RecordKind::FileGet),
        ];
        assert_eq!(
            EVENT_NAMES.len(),
            SYSCALL_EVENTS.len() + REQUEST_TRACEPOINTS.len()
        );
        assert_eq!(EVENT_NAMES[..3], SYSCALL_EVENTS);
        for (event, kind) in expected {
            let index = request_tracepoint_index(event).expect(event);
            assert_eq!(REQUEST_TRACEPOINTS[index].kind, kind, "{event}");
        }
        assert_eq!(request_tracepoint_index("io_uring_enter"), None);
        assert_eq!(request_tracepoint_index("bogus"), None);
    }

    fn status(
        category: &'static str,
        names: &'static [&'static str],
        present: bool,
    ) -> TracepointStatus {
        TracepointStatus {
            category,
            names,
            status: if present {
                Presence::Present
            } else {
                Presence::Absent
            },
            name: present.then_some(names[0]),
            error: None,
        }
    }

    fn all_tracepoints(syscalls: bool, requests: bool) -> Vec<TracepointStatus> {
        BASE_TRACEPOINTS
            .iter()
            .map(|&(c, n)| status(c, n, c != "syscalls" || syscalls))
            .chain(
                REQUEST_TRACEPOINTS
                    .iter()
                    .map(|tp| status("io_uring", tp.names, requests)),
            )
            .collect()
    }

    fn pmu(present: bool) -> KprobePmu {
        KprobePmu {
            present,
            pmu_type: present.then_some(8),
            error: None,
        }
    }

    fn kallsyms(all_present: bool) -> Vec<KprobeTarget> {
        kprobe_target_list()
            .into_iter()
            .map(|(symbol, purpose)| KprobeTarget {
                symbol,
                purpose,
                in_kallsyms: Some(all_present),
                clones: Vec::new(),
                blacklisted: None,
            })
            .collect()
    }

    const TRACEFS: Tracefs = Tracefs {
        status: TracefsStatus::Mounted,
        path: None,
        error: None,
    };

    #[test]
    fn tracepoints_first() {
        let plans = plan_events(
            "7.2.0",
            &all_tracepoints(true, true),
            &TRACEFS,
            &pmu(true),
            &kallsyms(true),
        );
        assert!(
            plans
                .iter()
                .all(|p| p.hook == HookKind::Tracepoint && p.traceable())
        );
        assert_eq!(
            plans[1].targets,
            [
                "syscalls:sys_enter_io_uring_enter",
                "syscalls:sys_exit_io_uring_enter"
            ]
        );
        assert_eq!(plans[5].event, "submit");
        assert_eq!(plans[5].targets, ["io_uring:io_uring_submit_req"]);
    }

    #[test]
    fn kprobes_when_tracepoints_are_missing() {
        let plans = plan_events(
            "7.2.0",
            &all_tracepoints(false, false),
            &TRACEFS,
            &pmu(true),
            &kallsyms(true),
        );
        let enter = &plans[1];
        assert_eq!(enter.hook, HookKind::Kprobe);
        assert_eq!(
            enter.targets,
            [
                format!("{SYSCALL_PREFIX}io_uring_enter"),
                format!("{SYSCALL_PREFIX}io_uring_enter%return")
            ]
        );
        // uringtrace hooks the x86-64 system call wrappers.
        assert_eq!(enter.traceable(), cfg!(target_arch = "x86_64"));
        // Submissions from the issue path: every probe in 7.2's window.
        assert_eq!(plans[5].hook, HookKind::Kprobe);
        assert_eq!(plans[5].targets, ["io_issue_sqe", "io_poll_issue"]);
        assert!(plans[5].traceable());
        assert_eq!(plans[6].event, "complete");
        assert_eq!(plans[6].hook, HookKind::None);
        assert_eq!(
            plans[6].reason.as_deref(),
            Some("no io_uring:io_uring_complete tracepoint")
        );
    }

    #[test]
    fn submit_kprobes_by_kernel_window() {
        let tracepoints = all_tracepoints(true, true);
        let plan = plan_submit_kprobes("6.1.0-37-amd64", &tracepoints, &pmu(true), &kallsyms(true));
        assert_eq!(plan.targets, ["io_issue_sqe"]);
        let skipped: Vec<_> = plan.skipped.iter().map(|s| s.symbol).collect();
        assert_eq!(skipped, ["io_poll_issue", "__io_submit_sqe"]);
        assert!(
            plan.skipped[0]
                .reason
                .contains("outside its window (6.15+)")
        );
        assert!(plan.fallback.is_none());
        let plan = plan_submit_kprobes("5.4.0", &tracepoints, &pmu(false), &kallsyms(true));
        assert!(plan.targets.is_empty());
        assert_eq!(
            plan.fallback.as_deref(),
            Some("tracepoint io_uring:io_uring_submit_req")
        );
    }

    const ROOT: Privileges = Privileges {
        euid: 0,
        cap_sys_admin: true,
        cap_bpf: true,
        cap_perfmon: true,
        sufficient: true,
    };

    /// Every program type loads; `kprobe_attach` is how the kprobe attaches.
    fn program_types(kprobe_attach: Outcome) -> ProgramTypes {
        let probe = |attach| ProgramProbe {
            target: None,
            btf_id: None,
            load: Outcome::Ok,
            attach,
        };
        ProgramTypes {
            tracepoint: probe(Outcome::Ok),
            tp_btf: probe(Outcome::Ok),
            fentry: probe(Outcome::Ok),
            kprobe: probe(kprobe_attach),
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn kprobe_hook_needs_kprobes_to_attach() {
        let tracepoints = all_tracepoints(false, true);
        let plans = plan_events("7.2.0", &tracepoints, &TRACEFS, &pmu(true), &kallsyms(true));
        let refused = Outcome::failed(
            "perf_event_open",
            &io::Error::from_raw_os_error(libc::EPERM),
        );
        let verdict = judge(
            &ROOT,
            &Outcome::Ok,
            &tracepoints,
            &program_types(refused),
            &plans,
        );
        assert!(!verdict.syscalls_traceable);
        assert_eq!(
            verdict.problems,
            [
                "a kprobe program failed to attach: failed: EPERM (Operation not permitted) from \
              perf_event_open"
            ]
        );
        let verdict = judge(
            &ROOT,
            &Outcome::Ok,
            &tracepoints,
            &program_types(Outcome::Ok),
            &plans,
        );
        assert!(verdict.syscalls_traceable, "{:?}", verdict.problems);
    }

    #[test]
    fn nothing_without_tracepoints_or_kprobes() {
        let plans = plan_events(
            "7.2.0",
            &all_tracepoints(false, true),
            &TRACEFS,
            &pmu(false),
            &kallsyms(true),
        );
        assert_eq!(plans[0].hook, HookKind::None);
        assert_eq!(
            plans[0].reason.as_deref(),
            Some(
                "no syscalls:sys_{enter,exit}_io_uring_* tracepoints (CONFIG_FTRACE_SYSCALLS); \
                 no kprobe PMU"
            )
        );
        let program_types = program_types(Outcome::Ok);
        let verdict = judge(
            &ROOT,
            &Outcome::Ok,
            &all_tracepoints(false, true),
            &program_types,
            &plans,
        );
        assert!(!verdict.syscalls_traceable);
        assert_eq!(verdict.request_events_traceable, REQUEST_TRACEPOINTS.len());
        // The three calls share their reason: one problem names them all.
        assert_eq!(
            verdict.problems,
            ["io_uring_setup, io_uring_enter, io_uring_register: no \
                 syscalls:sys_{enter,exit}_io_uring_* tracepoints (CONFIG_FTRACE_SYSCALLS); \
                 no kprobe PMU"]
        );
    }
}
