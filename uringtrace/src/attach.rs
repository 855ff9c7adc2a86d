//! Loading the eBPF object with this kernel's layouts and attaching its
//! programs.

use std::{os::fd::AsRawFd as _, path::Path};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, Map, MapData, PerCpuArray, PerCpuHashMap},
    programs::{BtfTracePoint, KProbe, RawTracePoint, TracePoint},
};
use uringtrace_common::{
    counters,
    filter::{FILTER_ALL, FILTER_TGIDS, TRACED_EXPLICIT, TaskFilter},
    header::TaskLayout,
    issue::{ISSUE_HOOKS, IssueHook, IssueLayout},
    layout::OFFSET_ABSENT,
    request::{
        OpcodeFilter, REQUEST_TRACEPOINTS, TP_COMPLETE, TP_CQE_OVERFLOW, TP_REQ_FAILED, TP_SUBMIT,
    },
    request_object::ObjectLayout,
    summary::{MAX_ERRNO_KEYS, MAX_TRACKED_REQUESTS, OP_SLOTS, SUMMARY_OFF, SUMMARY_ONLY},
};

use crate::{
    btf::{BtfTypes, VMLINUX_BTF},
    event_ring::EventRing,
    requests::{
        layout::RequestFormats,
        object::{ObjectSupport, layout_from_btf as object_layout_from_btf},
        recipe::{self, Recipes},
    },
    selection::{EventSelection, OpcodeSelection},
    summary::SummaryMaps,
    tracefs,
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/uringtrace"));

/// Which processes the kernel side lets through.
#[derive(Debug, Clone)]
pub struct ProcessFilter {
    /// Empty: every process.
    pub pids: Vec<u32>,
    /// Also trace every process a traced one starts.
    pub follow_forks: bool,
    /// Filter by pid even with no pid yet (a command about to be started
    /// adds itself).
    pub restrict: bool,
}

pub struct AttachOptions {
    pub filter: ProcessFilter,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub buffer_size: u32,
    pub events: EventSelection,
    pub ops: Option<OpcodeSelection>,
    /// `uringtrace_common::hook_mode`.
    pub hook_mode: u8,
    /// `uringtrace_common::summary::SUMMARY_*`.
    pub summary: u8,
    /// `--uid`, `--comm`, `--cgroup`.
    pub task_filter: TaskFilter,
    pub attach_mode: AttachMode,
}

/// `--attach`: how the system calls are hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Syscall tracepoints when the kernel has them, else kprobes.
    Auto,
    /// `syscalls:sys_{enter,exit}_io_uring_*` (CONFIG_FTRACE_SYSCALLS).
    Tracepoint,
    /// kprobe + kretprobe on `__x64_sys_io_uring_*` (CONFIG_KPROBES).
    Kprobe,
}

/// What the system calls are hooked with in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallHook {
    Tracepoint,
    Kprobe,
}

/// The program on one request tracepoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestHook {
    /// A tp_btf program that rebuilds the record from the arguments.
    TpBtf,
    /// The perf-event program that copies the record the kernel built,
    /// with why the tp_btf one is not used, and whether that is because
    /// the kernel refused to load or attach it (a bug of ours: the
    /// fallback traces the event at about twice the cost per request),
    /// rather than a kernel or BTF without what it needs.
    Tracepoint {
        why_not_tp_btf: String,
        tp_btf_refused: bool,
    },
}

/// What the `submit` events come from in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitHook {
    /// The submit tracepoint (when submissions are traced at all).
    Tracepoint,
    /// Kprobes on the issue path: the symbols attached.
    Kprobe(Vec<&'static str>),
}

const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

/// The x86-64 syscall wrappers the kprobes attach to, with the programs.
const SYSCALL_KPROBES: [(&str, &str, &str); 3] = [
    (
        "__x64_sys_io_uring_setup",
        "kprobe_io_uring_setup",
        "kretprobe_io_uring_setup",
    ),
    (
        "__x64_sys_io_uring_enter",
        "kprobe_io_uring_enter",
        "kretprobe_io_uring_enter",
    ),
    (
        "__x64_sys_io_uring_register",
        "kprobe_io_uring_register",
        "kretprobe_io_uring_register",
    ),
];

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Picks the syscall hook for `mode`, or says why none works here.
fn syscall_hook(mode: AttachMode, tracepoints: bool) -> anyhow::Result<SyscallHook> {
    let kprobes = Path::new(KPROBE_PMU).exists();
    match (mode, tracepoints, kprobes) {
        (AttachMode::Tracepoint | AttachMode::Auto, true, _) => Ok(SyscallHook::Tracepoint),
        (AttachMode::Kprobe | AttachMode::Auto, _, true) => Ok(SyscallHook::Kprobe),
        (AttachMode::Kprobe, _, false) => bail!(
            "kernel {} has no kprobe PMU ({KPROBE_PMU} is missing: CONFIG_KPROBES is off); \
             use --attach tracepoint",
            kernel_release()
        ),
        (AttachMode::Tracepoint, false, _) => bail!(
            "kernel {} has no io_uring system call tracepoints (CONFIG_FTRACE_SYSCALLS is off); \
             use --attach kprobe",
            kernel_release()
        ),
        (AttachMode::Auto, false, false) => bail!(
            "kernel {} has neither system call tracepoints (CONFIG_FTRACE_SYSCALLS) nor \
             kprobes (CONFIG_KPROBES): the io_uring system calls cannot be traced",
            kernel_release()
        ),
    }
}

/// A loaded, attached tracer. Dropping it detaches every program.
pub struct Attached {
    pub ebpf: Ebpf,
    pub events: EventRing,
    pub counters: PerCpuArray<MapData, u64>,
    pub traced: BpfHashMap<MapData, u32, u8>,
    /// This kernel's io_uring tracepoint layouts, for decoding.
    pub formats: RequestFormats,
    /// Request tracepoints wanted but missing on this kernel.
    pub missing: Vec<&'static str>,
    /// What requests' objects (paths, addresses, fds) and credentials can
    /// be decoded, and why not.
    pub objects: ObjectSupport,
    /// Why io_uring's threads are told by their names in this session
    /// (rather than by the kernel's PF_IO_WORKER), when they are.
    pub workers_by_name: Option<String>,
    /// How each request tracepoint attached is hooked, by
    /// REQUEST_TRACEPOINTS index (`None`: not attached).
    pub request_hooks: [Option<RequestHook>; REQUEST_TRACEPOINTS.len()],
    /// Owned, so that [`detach`] can release them concurrently.
    pub links: Vec<Box<dyn Send>>,
    /// How the system calls are hooked.
    pub syscall_hook: SyscallHook,
    /// Where the submissions come from.
    pub submit_hook: SubmitHook,
    /// Summary mode's aggregates.
    pub summary: Option<SummaryMaps>,
}

/// Detaches every program. Each tracepoint detach waits for an RCU grace
/// period (~75 ms here); one after the other, two dozen of them kept
/// uringtrace from exiting for two seconds after its report. Concurrent
/// detaches share grace periods.
pub fn detach(links: Vec<Box<dyn Send>>, ebpf: Ebpf) {
    std::thread::scope(|scope| {
        for link in links {
            scope.spawn(move || drop(link));
        }
    });
    drop(ebpf);
}

/// The syscall tracepoints, in attach order: exits before entries, so that
/// no call's entry can be recorded without its exit program in place.
const SYSCALL_PROGRAMS: [&str; 6] = [
    "sys_exit_io_uring_setup",
    "sys_exit_io_uring_enter",
    "sys_exit_io_uring_register",
    "sys_enter_io_uring_setup",
    "sys_enter_io_uring_enter",
    "sys_enter_io_uring_register",
];

/// Offsets the programs need, from this kernel's format files.
struct Layouts {
    /// Absent when the kernel has no syscall tracepoints.
    syscalls: Option<(u32, u32)>,
    fork_child_pid: u32,
    exit_group_dead: u32,
}

fn resolve_layouts(root: &Path) -> anyhow::Result<Layouts> {
    let has_syscall_tracepoints = root
        .join("events/syscalls/sys_enter_io_uring_enter")
        .is_dir();
    let syscalls = if has_syscall_tracepoints {
        Some(resolve_syscall_layouts(root)?)
    } else {
        None
    };
    let fork = tracefs::format(root, "sched", "sched_process_fork")?;
    let exit = tracefs::format(root, "sched", "sched_process_exit")?;
    Ok(Layouts {
        syscalls,
        fork_child_pid: fork.field("child_pid")?.offset,
        exit_group_dead: exit
            .fields
            .iter()
            .find(|f| f.name == "group_dead")
            .map_or(OFFSET_ABSENT, |f| f.offset),
    })
}

/// The arguments' and the result's offsets in the syscall tracepoints.
fn resolve_syscall_layouts(root: &Path) -> anyhow::Result<(u32, u32)> {
    let mut syscall_args = None;
    for call in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        let fmt = tracefs::format(root, "syscalls", &format!("sys_enter_{call}")).context(
            "the io_uring system call tracepoints are missing: this kernel needs \
             CONFIG_FTRACE_SYSCALLS",
        )?;
        // Arguments follow __syscall_nr in 8-byte slots on every kernel; the
        // programs rely on that, so check it rather than assume it.
        let args: Vec<_> = fmt
            .fields
            .iter()
            .filter(|f| f.name != "__syscall_nr")
            .collect();
        let Some(first) = args.first() else {
            bail!("{}: no argument fields", fmt.path);
        };
        for (i, f) in args.iter().enumerate() {
            if f.size != 8 || f.offset != first.offset + 8 * i as u32 {
                bail!(
                    "{}: argument {} at offset {} size {}: not the 8-byte slots this \
                     tracer reads",
                    fmt.path,
                    f.name,
                    f.offset,
                    f.size
                );
            }
        }
        match syscall_args {
            None => syscall_args = Some(first.offset),
            Some(off) if off != first.offset => {
                bail!(
                    "{}: arguments start at {} not {off}",
                    fmt.path,
                    first.offset
                )
            }
            Some(_) => {}
        }
    }
    let mut syscall_ret = None;
    for call in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        let fmt = tracefs::format(root, "syscalls", &format!("sys_exit_{call}"))?;
        let off = fmt.field("ret")?.offset;
        if syscall_ret.is_some_and(|o| o != off) {
            bail!("{}: ret at {off}, unlike the other exits", fmt.path);
        }
        syscall_ret = Some(off);
    }
    Ok((syscall_args.unwrap_or(16), syscall_ret.unwrap_or(16)))
}

pub fn attach(opts: &AttachOptions) -> anyhow::Result<Attached> {
    if OBJECT.is_empty() {
        bail!(
            "this uringtrace was built with AYA_BUILD_SKIP=1 and carries no eBPF programs; \
             rebuild it without (run `cargo xtask setup` first)"
        );
    }
    crate::privileges::check()?;
    crate::privileges::raise_memlock_limit();
    let root = tracefs::root()?;
    let layouts = resolve_layouts(&root)?;
    let syscall_hook = syscall_hook(opts.attach_mode, layouts.syscalls.is_some())?;
    let (syscall_args, syscall_ret) = layouts.syscalls.unwrap_or((16, 16));
    let formats = RequestFormats::read(&root).context("reading the io_uring tracepoint formats")?;
    let request_layout = formats.kernel_layout();
    let opcode_filter = opcodes_for_kernel(opts.ops);
    let btf = BtfTypes::read(Path::new(VMLINUX_BTF))
        .map_err(|e| format!("no kernel BTF ({e}): kernel structures cannot be read"));
    // What aya needs of the kernel's BTF to load the tp_btf programs: the
    // ids of their tracepoints' typedefs (see BtfTypes::attach_ids).
    let kernel_btf = btf.as_ref().map_err(String::clone).and_then(|btf| {
        let tracepoints: Vec<&str> = REQUEST_TRACEPOINTS
            .iter()
            .filter_map(|tp| formats.get(tp).map(|f| f.name))
            .collect();
        aya::Btf::parse(&btf.attach_ids(&tracepoints), aya::Endianness::default())
            .map_err(|e| format!("the tracepoints' BTF ids: {e}"))
    });
    let objects = object_layout(opts, &formats, btf.as_ref());
    let object_layout = objects.as_ref().map_or(ObjectLayout::OFF, |(l, _)| *l);
    let task_flags = task_flags_offset(btf.as_ref());
    let task_flags_offset = *task_flags.as_ref().unwrap_or(&OFFSET_ABSENT);
    let task_layout = task_layout(btf.as_ref()).unwrap_or(TaskLayout::OFF);
    let issue = issue_probes(opts, &formats, btf.as_ref());
    let issue_layout = issue.as_ref().map_or(IssueLayout::OFF, |(l, _)| *l);
    let recipes = match btf.as_ref() {
        Ok(btf) => recipe::derive(btf, &formats),
        Err(why) => Recipes::none(why),
    };
    drop(btf);
    // The object program folded into the submit tp_btf program: one
    // program run per submission instead of two. Only where that program
    // will be tried (a recipe, submissions from the tracepoint, the
    // request its typed first argument); if the kernel then refuses it,
    // the object program is attached on its own after all.
    let objects_in_submit = objects.as_ref().is_ok_and(|(l, _)| l.req_arg == 0)
        && issue.is_none()
        && recipes.why_not[TP_SUBMIT].is_none()
        && opts.events.request_tracepoints().contains(&TP_SUBMIT);

    let filter_mode = if opts.filter.restrict || !opts.filter.pids.is_empty() {
        FILTER_TGIDS
    } else {
        FILTER_ALL
    };
    let follow = u8::from(opts.filter.follow_forks);
    let wakeup_bytes = crate::wakeup::wakeup_bytes(opts.buffer_size);
    let mut ebpf = EbpfLoader::new()
        // No CO-RE relocations to make (Rust eBPF has none).
        .btf(None)
        .override_global("FILTER_MODE", &filter_mode, true)
        .override_global("FOLLOW_FORKS", &follow, true)
        .override_global("SYSCALL_ARGS_OFFSET", &syscall_args, true)
        .override_global("SYSCALL_RET_OFFSET", &syscall_ret, true)
        .override_global("FORK_CHILD_PID_OFFSET", &layouts.fork_child_pid, true)
        .override_global("EXIT_GROUP_DEAD_OFFSET", &layouts.exit_group_dead, true)
        .override_global("REQUEST_LAYOUT", &request_layout, true)
        .override_global("OPCODE_FILTER", &opcode_filter, true)
        .override_global("HOOK_MODE", &opts.hook_mode, true)
        .override_global("SUMMARY_MODE", &opts.summary, true)
        .override_global("TASK_FILTER", &opts.task_filter, true)
        .override_global("OBJECT_LAYOUT", &object_layout, true)
        .override_global("TASK_FLAGS_OFFSET", &task_flags_offset, true)
        .override_global("TASK_LAYOUT", &task_layout, true)
        .override_global("OBJECTS_IN_SUBMIT", &u8::from(objects_in_submit), true)
        .override_global("ISSUE_LAYOUT", &issue_layout, true)
        .override_global("WAKEUP_BYTES", &wakeup_bytes, true)
        .override_global("RECIPE_LAYOUT", &recipes.layout, true)
        .map_max_entries("EVENTS", opts.buffer_size)
        // Summary mode's maps, unused without it: one entry each, rather
        // than allocating (and zeroing) them at start-up for nothing.
        .map_max_entries(
            "REQUEST_STARTS",
            summary_entries(opts, MAX_TRACKED_REQUESTS),
        )
        .map_max_entries("ERRNO_COUNTS", summary_entries(opts, MAX_ERRNO_KEYS))
        .map_max_entries("OP_STATS", summary_entries(opts, OP_SLOTS))
        .load(OBJECT)
        .context("loading the eBPF programs into the kernel")?;

    let mut traced: BpfHashMap<MapData, u32, u8> = BpfHashMap::try_from(
        ebpf.take_map("TRACED_TGIDS")
            .context("eBPF object lacks TRACED_TGIDS")?,
    )?;
    for &pid in &opts.filter.pids {
        traced
            .insert(pid, TRACED_EXPLICIT, 0)
            .with_context(|| format!("adding pid {pid} to the in-kernel filter"))?;
    }

    let mut links = Vec::new();
    // Before the request tracepoints: without a single submit kprobe, the
    // submit tracepoint stays.
    let submit_hook = match issue {
        Some((_, hooks)) => attach_issue_kprobes(&mut ebpf, &hooks, &mut links),
        None => SubmitHook::Tracepoint,
    };
    // (program, category, tracepoint, REQUEST_TRACEPOINTS index).
    let mut programs: Vec<(&str, &str, &str, Option<usize>)> = vec![
        ("sched_process_fork", "sched", "sched_process_fork", None),
        ("sched_process_exit", "sched", "sched_process_exit", None),
    ];
    // Request tracepoints before the system calls, so a ring created or a
    // request submitted by a traced call is never missed.
    let mut missing = Vec::new();
    for index in opts.events.request_tracepoints() {
        let tp = &REQUEST_TRACEPOINTS[index];
        // Summary-only mode aggregates submissions and CQEs; the other
        // hooks would have nothing to do.
        if opts.summary == SUMMARY_ONLY
            && ![TP_SUBMIT, TP_REQ_FAILED, TP_COMPLETE, TP_CQE_OVERFLOW].contains(&index)
        {
            continue;
        }
        if index == TP_SUBMIT && submit_hook != SubmitHook::Tracepoint {
            continue;
        }
        match formats.get(tp) {
            Some(fields) => {
                programs.push((PROGRAM_NAMES[index], "io_uring", fields.name, Some(index)))
            }
            None => missing.push(tp.names[0]),
        }
    }
    if syscall_hook == SyscallHook::Tracepoint {
        programs.extend(
            SYSCALL_PROGRAMS
                .iter()
                .filter(|p| {
                    let call = p
                        .trim_start_matches("sys_enter_")
                        .trim_start_matches("sys_exit_");
                    opts.events.shows(call)
                })
                .map(|p| (*p, "syscalls", *p, None)),
        );
    }
    links.reserve(programs.len() + 1);
    // Before the submit tracepoint's own program: a request's object record
    // then comes before its submission in the ring buffer.
    let mut objects = match objects {
        Ok((layout, tracepoint)) if objects_in_submit => Objects::InSubmit(layout, tracepoint),
        Ok((layout, tracepoint)) => Objects::Attached(attach_objects(
            &mut ebpf,
            &layout,
            tracepoint,
            kernel_btf.as_ref(),
            &mut links,
        )),
        Err(why) => Objects::Attached(ObjectSupport::unavailable(why)),
    };
    let mut request_hooks = [const { None }; REQUEST_TRACEPOINTS.len()];
    for (prog, category, name, index) in programs {
        if let Some(index) = index {
            let (why, refused) = match (&recipes.why_not[index], &kernel_btf) {
                (Some(why), _) => (why.clone(), false),
                (None, Err(why)) => (why.clone(), false),
                (None, Ok(btf)) => {
                    let program = format!("{}_btf", PROGRAM_NAMES[index]);
                    match attach_tp_btf(&mut ebpf, &program, name, btf, &mut links) {
                        Ok(()) => {
                            request_hooks[index] = Some(RequestHook::TpBtf);
                            if let Objects::InSubmit(layout, _) = objects
                                && index == TP_SUBMIT
                            {
                                objects = Objects::Attached(ObjectSupport::of_layout(&layout));
                            }
                            continue;
                        }
                        Err(refusal) => (refusal.0, true),
                    }
                }
            };
            // The submit program falls back to its perf-event form, which
            // does not write objects: the object program goes first.
            if let Objects::InSubmit(layout, tracepoint) = objects
                && index == TP_SUBMIT
            {
                objects = Objects::Attached(attach_objects(
                    &mut ebpf,
                    &layout,
                    tracepoint,
                    kernel_btf.as_ref(),
                    &mut links,
                ));
            }
            request_hooks[index] = Some(RequestHook::Tracepoint {
                why_not_tp_btf: why,
                tp_btf_refused: refused,
            });
        }
        let program: &mut TracePoint = ebpf
            .program_mut(prog)
            .with_context(|| format!("eBPF object lacks program {prog}"))?
            .try_into()?;
        // Once per program: the submit program may serve either name.
        if program.fd().is_err() {
            program
                .load()
                .with_context(|| format!("the kernel's verifier rejected {prog}"))?;
        }
        let id = program
            .attach(category, name)
            .with_context(|| format!("attaching to tracepoint {category}:{name}"))?;
        links.push(Box::new(program.take_link(id)?) as Box<dyn Send>);
    }
    if syscall_hook == SyscallHook::Kprobe {
        attach_syscall_kprobes(&mut ebpf, opts.events, &mut links)?;
    }

    let objects = match objects {
        Objects::Attached(support) => support,
        Objects::InSubmit(layout, tracepoint) => attach_objects(
            &mut ebpf,
            &layout,
            tracepoint,
            kernel_btf.as_ref(),
            &mut links,
        ),
    };

    let events = match ebpf.take_map("EVENTS") {
        Some(Map::RingBuf(data)) => EventRing::new(data).context("reading the ring buffer")?,
        Some(_) => bail!("the eBPF object's EVENTS is not a ring buffer"),
        None => bail!("eBPF object lacks EVENTS"),
    };
    let counters = PerCpuArray::try_from(
        ebpf.take_map("COUNTERS")
            .context("eBPF object lacks COUNTERS")?,
    )?;
    let summary = if opts.summary == SUMMARY_OFF {
        None
    } else {
        let mut take = |name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("eBPF object lacks {name}"))
        };
        Some(SummaryMaps {
            syscalls: PerCpuArray::try_from(take("SYSCALL_STATS")?)?,
            opcodes: PerCpuArray::try_from(take("OP_STATS")?)?,
            errnos: PerCpuHashMap::try_from(take("ERRNO_COUNTS")?)?,
        })
    };
    Ok(Attached {
        summary,
        ebpf,
        events,
        counters,
        traced,
        formats,
        missing,
        objects,
        workers_by_name: task_flags.err(),
        request_hooks,
        links,
        syscall_hook,
        submit_hook,
    })
}

/// The kprobe submit path's BTF offsets and the probes to attach, when
/// this session takes its submissions from kprobes: `--attach kprobe`, or
/// `auto` on a kernel without the submit tracepoint. Summary mode joins
/// submissions and CQEs in the kernel on the tracepoints, so it keeps
/// them. A probe outside its kernel-version window or not in kallsyms
/// (inlined, renamed) is skipped with a warning.
fn issue_probes(
    opts: &AttachOptions,
    formats: &RequestFormats,
    btf: Result<&BtfTypes, &String>,
) -> Option<(IssueLayout, Vec<&'static IssueHook>)> {
    let submit = &REQUEST_TRACEPOINTS[TP_SUBMIT];
    let wanted = match opts.attach_mode {
        AttachMode::Kprobe => true,
        AttachMode::Auto => formats.get(submit).is_none() && Path::new(KPROBE_PMU).exists(),
        AttachMode::Tracepoint => false,
    };
    if !wanted
        || !opts.events.request_tracepoints().contains(&TP_SUBMIT)
        || opts.summary != SUMMARY_OFF
    {
        return None;
    }
    let warn = |why: &str| {
        eprintln!(
            "uringtrace: warning: submissions cannot come from kprobes ({why}); {}",
            if formats.get(submit).is_some() {
                "the submit tracepoint is used"
            } else {
                "they are not traced"
            }
        );
    };
    let layout = match btf.map_err(String::clone).and_then(issue_layout) {
        Ok(l) => l,
        Err(why) => {
            warn(&why);
            return None;
        }
    };
    let release = kernel_release();
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let hooks: Vec<_> = ISSUE_HOOKS
        .iter()
        .filter(|h| match issue_hook_usable(h, &release, &kallsyms) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("uringtrace: warning: kprobe {} skipped: {why}", h.symbol);
                false
            }
        })
        .collect();
    if hooks.is_empty() {
        warn("no issue function of this kernel can be probed");
        return None;
    }
    Some((layout, hooks))
}

/// Whether `hook` applies to kernel `release` and can be probed by name.
pub(crate) fn issue_hook_usable(
    hook: &IssueHook,
    release: &str,
    kallsyms: &str,
) -> Result<(), String> {
    let window = match hook.until {
        Some((a, b)) => format!(
            "{}.{} to {a}.{}",
            hook.from.0,
            hook.from.1,
            b.saturating_sub(1)
        ),
        None => format!("{}.{}+", hook.from.0, hook.from.1),
    };
    if !release_at_least(release, hook.from)
        || hook.until.is_some_and(|u| release_at_least(release, u))
    {
        return Err(format!("kernel {release} is outside its window ({window})"));
    }
    if !kallsyms.is_empty() && !kallsyms_has(kallsyms, hook.symbol) {
        return Err(format!(
            "not in /proc/kallsyms (inlined or renamed on kernel {release})"
        ));
    }
    Ok(())
}

/// Whether kallsyms has exactly `symbol` (not only a `.isra`/`.constprop`
/// clone, which a kprobe on `symbol` does not reach).
fn kallsyms_has(kallsyms: &str, symbol: &str) -> bool {
    kallsyms.lines().any(|line| {
        let mut parts = line.split_whitespace();
        parts.nth(2) == Some(symbol)
    })
}

/// The `struct io_kiocb` (and `io_ring_ctx.flags`) offsets the submit
/// kprobes read, from BTF.
fn issue_layout(btf: &BtfTypes) -> Result<IssueLayout, String> {
    let need = |path: &[&str]| {
        btf.member("io_kiocb", path)
            .ok_or_else(|| format!("this kernel's BTF has no io_kiocb.{}", path.join(".")))
    };
    let flags = need(&["flags"])?;
    if flags.size != 4 && flags.size != 8 {
        return Err(format!("io_kiocb.flags is {} bytes", flags.size));
    }
    // 5.18 moved user_data into the request's embedded CQE.
    let user_data = need(&["cqe", "user_data"]).or_else(|_| need(&["user_data"]))?;
    Ok(IssueLayout {
        enabled: 1,
        req_ctx: need(&["ctx"])?.offset,
        req_opcode: need(&["opcode"])?.offset,
        req_flags: flags.offset,
        req_flags_size: flags.size,
        req_user_data: user_data.offset,
        ctx_flags: btf
            .member("io_ring_ctx", &["flags"])
            .filter(|m| m.size == 4)
            .map_or(OFFSET_ABSENT, |m| m.offset),
        _pad: 0,
    })
}

/// Attaches the submit kprobes; a probe the kernel refuses is skipped with
/// a warning. With none attached, the submit tracepoint is used.
fn attach_issue_kprobes(
    ebpf: &mut Ebpf,
    hooks: &[&'static IssueHook],
    links: &mut Vec<Box<dyn Send>>,
) -> SubmitHook {
    let mut attached = Vec::new();
    for hook in hooks {
        let result = (|| -> anyhow::Result<()> {
            let program: &mut KProbe = ebpf
                .program_mut(hook.program)
                .with_context(|| format!("eBPF object lacks program {}", hook.program))?
                .try_into()?;
            program
                .load()
                .with_context(|| format!("the kernel's verifier rejected {}", hook.program))?;
            let id = program
                .attach(hook.symbol, 0)
                .with_context(|| format!("attaching {} to {}", hook.program, hook.symbol))?;
            links.push(Box::new(program.take_link(id)?));
            Ok(())
        })();
        match result {
            Ok(()) => attached.push(hook.symbol),
            Err(e) => eprintln!("uringtrace: warning: kprobe {} skipped: {e:#}", hook.symbol),
        }
    }
    if attached.is_empty() {
        eprintln!(
            "uringtrace: warning: no submit kprobe could be attached; the submit tracepoint is used"
        );
        SubmitHook::Tracepoint
    } else {
        SubmitHook::Kprobe(attached)
    }
}

/// The BTF offsets of the request-object program and the submit
/// tracepoint's name, or why objects cannot be decoded in this session.
/// Why objects are not decoded when the session shows nothing that has one.
pub(crate) const OBJECTS_NOT_NEEDED: &str = "not needed";

fn object_layout(
    opts: &AttachOptions,
    formats: &RequestFormats,
    btf: Result<&BtfTypes, &String>,
) -> Result<(ObjectLayout, &'static str), String> {
    if !opts.events.any_request()
        || opts.summary == SUMMARY_ONLY
        || opts.hook_mode != uringtrace_common::hook_mode::FULL
    {
        return Err(OBJECTS_NOT_NEEDED.into());
    }
    let submit = formats
        .get(&REQUEST_TRACEPOINTS[TP_SUBMIT])
        .ok_or("this kernel has no submit tracepoint")?;
    let layout = object_layout_from_btf(btf.map_err(String::clone)?, submit.name, &submit.places)?;
    Ok((layout, submit.name))
}

/// `task_struct.flags`' offset, for the request programs to tell io_uring's
/// own threads by PF_IO_WORKER; or why they go by thread names here.
/// Before 5.12 io-wq workers and the SQPOLL thread were kernel threads, and
/// only the io-wq ones had the flag: the names (which a user thread cannot
/// take from a kernel thread's pid) are what those kernels offer.
pub(crate) fn task_flags_offset(btf: Result<&BtfTypes, &String>) -> Result<u32, String> {
    let release = kernel_release();
    if !release_at_least(&release, (5, 12)) {
        return Err(format!(
            "kernel {release} predates 5.12, where every io_uring thread has PF_IO_WORKER"
        ));
    }
    let flags = btf
        .map_err(String::clone)?
        .member("task_struct", &["flags"])
        .filter(|m| m.size == 4)
        .ok_or("this kernel's BTF has no 4-byte task_struct.flags")?;
    Ok(flags.offset)
}

/// Where the record header's task fields are, for the programs to load
/// them through `bpf_get_current_task_btf()` (5.11+) instead of calling a
/// helper for each; or why they call the helpers here.
pub(crate) fn task_layout(btf: Result<&BtfTypes, &String>) -> Result<TaskLayout, String> {
    let release = kernel_release();
    if !release_at_least(&release, (5, 11)) {
        return Err(format!(
            "kernel {release} predates 5.11 and bpf_get_current_task_btf()"
        ));
    }
    let btf = btf.map_err(String::clone)?;
    let member = |strukt: &str, name: &str, size: u32| {
        btf.member(strukt, &[name])
            .filter(|m| m.size == size)
            .map(|m| m.offset)
            .ok_or_else(|| format!("this kernel's BTF has no {size}-byte {strukt}.{name}"))
    };
    Ok(TaskLayout {
        enabled: 1,
        pid: member("task_struct", "pid", 4)?,
        tgid: member("task_struct", "tgid", 4)?,
        comm: member("task_struct", "comm", uringtrace_common::COMM_LEN as u32)?,
        cred: member("task_struct", "cred", 8)?,
        cred_uid: member("cred", "uid", 4)?,
        cred_gid: member("cred", "gid", 4)?,
        _pad: 0,
    })
}

/// Whether `release` (`uname -r`: "6.18.44-...") is at least `want`; an
/// unparsable release is taken as new (the BTF checks still apply).
fn release_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= want,
        _ => true,
    }
}

/// `max_entries` of a summary-mode map: `full`, or 1 when the session does
/// not aggregate (the programs never touch the map then).
fn summary_entries(opts: &AttachOptions, full: u32) -> u32 {
    if opts.summary == SUMMARY_OFF { 1 } else { full }
}

/// Where the request objects stand while the programs are attached.
enum Objects {
    /// Settled: the object program is attached, or objects are not read.
    Attached(ObjectSupport),
    /// To be written by the submit tp_btf program (OBJECTS_IN_SUBMIT), once
    /// it is attached; the layout and the submit tracepoint's name.
    InSubmit(ObjectLayout, &'static str),
}

/// The object program attached on its own, and what it then supports.
fn attach_objects(
    ebpf: &mut Ebpf,
    layout: &ObjectLayout,
    tracepoint: &str,
    btf: Result<&aya::Btf, &String>,
    links: &mut Vec<Box<dyn Send>>,
) -> ObjectSupport {
    match attach_object_program(ebpf, tracepoint, layout.req_arg, btf, links) {
        Ok(()) => ObjectSupport::of_layout(layout),
        Err(why) => ObjectSupport::unavailable(why),
    }
}

/// The request-object program on the submit tracepoint: tp_btf where the
/// verifier takes it; else (5.10's verifier under 5.15's io_uring, whose
/// request is an untyped `void *`) the same code as a raw tracepoint, which
/// takes the request as a plain u64 and reads it with bpf_probe_read_kernel
/// at the same BTF offsets. `req_arg`: the tracepoint argument that is the
/// request.
fn attach_object_program(
    ebpf: &mut Ebpf,
    tracepoint: &str,
    req_arg: u32,
    btf: Result<&aya::Btf, &String>,
    links: &mut Vec<Box<dyn Send>>,
) -> Result<(), String> {
    let refused = match btf.map_err(String::clone).and_then(|btf| {
        attach_tp_btf(ebpf, "io_uring_submit_object", tracepoint, btf, links)
            .map_err(|refusal| refusal.0)
    }) {
        Ok(()) => return Ok(()),
        Err(why) => why,
    };
    attach_object_raw_tracepoint(ebpf, tracepoint, req_arg, links)
        .map_err(|why| format!("{refused}; {why}"))
}

/// One raw tracepoint program per request argument (constant context
/// offsets only, for 5.10's verifier).
fn attach_object_raw_tracepoint(
    ebpf: &mut Ebpf,
    tracepoint: &str,
    req_arg: u32,
    links: &mut Vec<Box<dyn Send>>,
) -> Result<(), String> {
    let name = match req_arg {
        0 => "io_uring_submit_object_raw0",
        1 => "io_uring_submit_object_raw1",
        n => return Err(format!("no raw tracepoint program reads argument {n}")),
    };
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("the eBPF object lacks {name}"))?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    program.load().map_err(|e| {
        format!("the kernel refused the raw tracepoint program on {tracepoint}: {e}")
    })?;
    let id = program
        .attach(tracepoint)
        .map_err(|e| format!("attaching the raw tracepoint program to {tracepoint}: {e}"))?;
    links.push(Box::new(program.take_link(id).map_err(|e| format!("{e}"))?));
    Ok(())
}

/// Kretprobes first, like the tracepoints: no entry is recorded without its
/// exit program in place.
fn attach_syscall_kprobes(
    ebpf: &mut Ebpf,
    events: EventSelection,
    links: &mut Vec<Box<dyn Send>>,
) -> anyhow::Result<()> {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let wanted: Vec<_> = SYSCALL_KPROBES
        .iter()
        .filter(|(symbol, _, _)| events.shows(symbol.trim_start_matches("__x64_sys_")))
        .collect();
    for (symbol, _, _) in &wanted {
        if !kallsyms.is_empty() && !kallsyms.contains(&format!(" {symbol}\n")) {
            bail!(
                "kernel {} has no {symbol} to probe (not an x86-64 kernel?); \
                 use --attach tracepoint",
                kernel_release()
            );
        }
    }
    let programs = wanted
        .iter()
        .map(|(s, _, ret)| (*s, *ret))
        .chain(wanted.iter().map(|(s, entry, _)| (*s, *entry)));
    for (symbol, prog) in programs {
        let program: &mut KProbe = ebpf
            .program_mut(prog)
            .with_context(|| format!("eBPF object lacks program {prog}"))?
            .try_into()?;
        program
            .load()
            .with_context(|| format!("the kernel's verifier rejected {prog}"))?;
        let id = program
            .attach(symbol, 0)
            .with_context(|| format!("attaching {prog} to {symbol}"))?;
        links.push(Box::new(program.take_link(id)?));
    }
    Ok(())
}

/// Why uringtrace's own tp_btf program is not in use: the kernel refused
/// to load or attach it (or the object lacks it).
struct Refusal(String);

/// Loads tp_btf program `name` against `tracepoint` and attaches it, or
/// says why the kernel would not take it.
fn attach_tp_btf(
    ebpf: &mut Ebpf,
    name: &str,
    tracepoint: &str,
    btf: &aya::Btf,
    links: &mut Vec<Box<dyn Send>>,
) -> Result<(), Refusal> {
    let program: &mut BtfTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| Refusal(format!("the eBPF object lacks {name}")))?
        .try_into()
        .map_err(|e| Refusal(format!("{e}")))?;
    program.load(tracepoint, btf).map_err(|e| {
        Refusal(format!(
            "the kernel refused the tp_btf program on {tracepoint}: {e:#}"
        ))
    })?;
    let id = program
        .attach()
        .map_err(|e| Refusal(format!("attaching the tp_btf program to {tracepoint}: {e}")))?;
    let link = program.take_link(id).map_err(|e| Refusal(format!("{e}")))?;
    links.push(Box::new(link));
    Ok(())
}

/// The eBPF program of each request tracepoint, by REQUEST_TRACEPOINTS index.
const PROGRAM_NAMES: [&str; REQUEST_TRACEPOINTS.len()] = [
    "io_uring_create",
    "io_uring_register",
    "io_uring_submit",
    "io_uring_complete",
    "io_uring_req_failed",
    "io_uring_cqe_overflow",
    "io_uring_queue_async_work",
    "io_uring_poll_arm",
    "io_uring_task_add",
    "io_uring_defer",
    "io_uring_link",
    "io_uring_fail_link",
    "io_uring_cqring_wait",
    "io_uring_task_work_run",
    "io_uring_local_work_run",
    "io_uring_short_write",
    "io_uring_file_get",
];

fn opcodes_for_kernel(ops: Option<OpcodeSelection>) -> OpcodeFilter {
    ops.map_or(OpcodeFilter::ALL, |o| o.kernel_filter())
}

/// Kernel-side counters, summed over CPUs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KernelCounters {
    pub ringbuf_full: u64,
    pub inflight_full: u64,
    pub exit_without_entry: u64,
    pub filter_full: u64,
    pub rings_full: u64,
    pub tracepoint_read_failed: u64,
    pub summary_table_full: u64,
    pub summary_cqe_overflow: u64,
    /// Hook firings whose program the kernel did not run (missed_runs).
    pub skipped_runs: u64,
}

impl KernelCounters {
    pub fn read(map: &PerCpuArray<MapData, u64>, ebpf: &Ebpf) -> anyhow::Result<Self> {
        let sum = |index: u32| -> anyhow::Result<u64> {
            Ok(map
                .get(&index, 0)
                .with_context(|| format!("reading counter {index}"))?
                .iter()
                .sum())
        };
        Ok(Self {
            ringbuf_full: sum(counters::RINGBUF_FULL)?,
            inflight_full: sum(counters::INFLIGHT_FULL)?,
            exit_without_entry: sum(counters::EXIT_WITHOUT_ENTRY)?,
            filter_full: sum(counters::FILTER_FULL)?,
            rings_full: sum(counters::RINGS_FULL)?,
            tracepoint_read_failed: sum(counters::TRACEPOINT_READ_FAILED)?,
            summary_table_full: sum(counters::SUMMARY_TABLE_FULL)?,
            summary_cqe_overflow: sum(counters::SUMMARY_CQE_OVERFLOW)?,
            skipped_runs: crate::missed_runs::skipped_runs(ebpf),
        })
    }
}

/// The raw fd of the in-kernel pid filter, for a child about to exec to add
/// itself (see session::spawn_traced).
pub fn traced_map_fd(traced: &BpfHashMap<MapData, u32, u8>) -> i32 {
    use std::os::fd::AsFd as _;

    use aya::maps::IterableMap as _;
    traced.map().fd().as_fd().as_raw_fd()
}

/// The kernel's task filter from `--uid`, `--comm`, `--cgroup`.
pub fn task_filter(
    uid: Option<u32>,
    comm: Option<&str>,
    cgroup: Option<&Path>,
) -> anyhow::Result<TaskFilter> {
    let mut f = TaskFilter::OFF;
    if let Some(uid) = uid {
        f.uid_enabled = 1;
        f.uid = uid;
    }
    if let Some(comm) = comm {
        f.comm_enabled = 1;
        f.comm[..comm.len()].copy_from_slice(comm.as_bytes());
    }
    if let Some(path) = cgroup {
        f.cgroup_id = cgroup_id(path)?;
    }
    Ok(f)
}

/// A cgroup v2 id is the inode number of its directory in cgroupfs.
fn cgroup_id(path: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/sys/fs/cgroup").join(path)
    };
    let meta = std::fs::metadata(&full)
        .with_context(|| format!("--cgroup: cannot read {}", full.display()))?;
    if !meta.is_dir() || !full.join("cgroup.procs").exists() {
        bail!(
            "--cgroup: {} is not a cgroup v2 directory (no cgroup.procs in it)",
            full.display()
        );
    }
    Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::{release_at_least, task_layout};
    use crate::btf::{BtfTypes, VMLINUX_BTF};

    /// The headers' plain-load path is taken on a kernel that has what it
    /// needs: falling back to the helpers here would pass every test and
    /// only cost time.
    #[test]
    fn task_layout_is_found_on_this_kernel() {
        let release = super::kernel_release();
        if !release_at_least(&release, (5, 11)) {
            crate::test_skip::skip(
                "task_layout_is_found_on_this_kernel",
                &format!("kernel {release} predates 5.11"),
            );
            return;
        }
        let Ok(btf) = BtfTypes::read(std::path::Path::new(VMLINUX_BTF)) else {
            crate::test_skip::skip(
                "task_layout_is_found_on_this_kernel",
                &format!("no readable {VMLINUX_BTF}"),
            );
            return;
        };
        let layout = task_layout(Ok(&btf)).expect("the header's task fields in this kernel's BTF");
        assert_eq!(layout.enabled, 1);
        // Neighbours in every kernel's task_struct and cred.
        assert_eq!(layout.tgid, layout.pid + 4);
        assert_eq!(layout.cred_gid, layout.cred_uid + 4);
        assert!(
            layout.comm > layout.cred,
            "comm follows the creds in task_struct"
        );
    }

    #[test]
    fn kernel_releases() {
        assert!(release_at_least("6.18.44-fc-v669", (5, 12)));
        assert!(release_at_least("5.12.0", (5, 12)));
        assert!(!release_at_least("5.11.22-generic", (5, 12)));
        assert!(!release_at_least("5.10.0-35-amd64", (5, 12)));
        assert!(release_at_least("?", (5, 12)));
    }
}
