//! The report for people: aligned sections, one line per probe.

use std::fmt::Write as _;

use super::report::{
    EventPlan, HookKind, KprobeTarget, Outcome, Presence, ProgramProbe, Report, TracefsStatus,
    TracepointStatus,
};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let kernel = &report.kernel;
    let privileges = &report.privileges;
    let caps: Vec<&str> = [
        ("CAP_SYS_ADMIN", privileges.cap_sys_admin),
        ("CAP_BPF", privileges.cap_bpf),
        ("CAP_PERFMON", privileges.cap_perfmon),
    ]
    .into_iter()
    .filter_map(|(name, has)| has.then_some(name))
    .collect();
    let btf = &report.btf;
    let tracefs = &report.tracefs;
    let pmu = &report.kprobe_pmu;
    table(
        &mut out,
        "",
        vec![
            vec![
                "kernel".into(),
                format!("{} ({})", kernel.release, kernel.machine),
            ],
            vec![
                "BTF".into(),
                match (btf.present, btf.types, &btf.error) {
                    (false, _, _) => format!("absent ({} missing)", btf.path),
                    (true, Some(types), _) => format!("{} ({types} types)", btf.path),
                    (true, None, error) => format!(
                        "{} present but unusable: {}",
                        btf.path,
                        error.as_deref().unwrap_or("unknown error")
                    ),
                },
            ],
            vec![
                "privileges".into(),
                format!(
                    "euid {}, {}: {}",
                    privileges.euid,
                    if caps.is_empty() {
                        "no CAP_SYS_ADMIN, CAP_BPF or CAP_PERFMON".to_string()
                    } else {
                        caps.join(", ")
                    },
                    if privileges.sufficient {
                        "enough to trace"
                    } else {
                        "not enough to trace"
                    }
                ),
            ],
            vec!["ring buffer".into(), outcome(&report.ring_buffer)],
            vec![
                "tracefs".into(),
                match tracefs.status {
                    TracefsStatus::Mounted => {
                        format!("mounted at {}", tracefs.path.as_deref().unwrap_or("?"))
                    }
                    TracefsStatus::MountedNow => format!(
                        "was not mounted; mounted it at {}",
                        tracefs.path.as_deref().unwrap_or("?")
                    ),
                    TracefsStatus::Unreadable => format!(
                        "mounted at {} but unreadable: {}",
                        tracefs.path.as_deref().unwrap_or("?"),
                        tracefs.error.as_deref().unwrap_or("?")
                    ),
                    TracefsStatus::Unavailable => {
                        format!("unavailable: {}", tracefs.error.as_deref().unwrap_or("?"))
                    }
                },
            ],
            vec![
                "io threads".into(),
                match (report.who.task_flags_offset, &report.who.io_threads_reason) {
                    (Some(offset), _) => {
                        format!("told by PF_IO_WORKER (task_struct.flags at {offset})")
                    }
                    (None, why) => format!("told by name only: {}", why.as_deref().unwrap_or("?")),
                },
            ],
            vec![
                "personality".into(),
                match (report.who.creds_bit, &report.who.creds_reason) {
                    (Some(bit), None) => {
                        format!("REQ_F_CREDS is bit {bit}; struct cred ids readable")
                    }
                    (_, why) => format!(
                        "credentials of accepted requests not shown: {}",
                        why.as_deref().unwrap_or("?")
                    ),
                },
            ],
            vec![
                "headers".into(),
                match &report.who.header_fields_reason {
                    None => "pid, uid, comm read from task_struct (BTF offsets)".into(),
                    Some(why) => format!("pid, uid, comm by helper calls (slower): {why}"),
                },
            ],
            vec![
                "kprobe PMU".into(),
                match (pmu.pmu_type, &pmu.error) {
                    (Some(pmu_type), _) => format!("present (perf type {pmu_type})"),
                    (None, error) => format!("absent: {}", error.as_deref().unwrap_or("?")),
                },
            ],
        ],
    );

    out.push_str("\nprogram types (r0 = 0; exit: loaded, attached, detached)\n");
    let types = &report.program_types;
    table(
        &mut out,
        "  ",
        [
            ("tracepoint", &types.tracepoint),
            ("tp_btf", &types.tp_btf),
            ("fentry", &types.fentry),
            ("kprobe", &types.kprobe),
        ]
        .into_iter()
        .map(|(name, probe)| vec![name.into(), probe_target(probe), probe_result(probe)])
        .collect(),
    );

    out.push_str("\ntracepoints\n");
    table(
        &mut out,
        "  ",
        report
            .tracepoints
            .iter()
            .map(|tp| vec![tp.qualified(), tracepoint_status(tp)])
            .collect(),
    );

    out.push_str("\nkprobe targets\n");
    table(
        &mut out,
        "  ",
        report
            .kprobe_targets
            .iter()
            .map(|t| vec![t.symbol.clone(), kprobe_target_status(t), t.purpose.into()])
            .collect(),
    );

    out.push_str("\nevents (the hook `--attach auto` uses for each on this kernel)\n");
    table(
        &mut out,
        "  ",
        report
            .events
            .iter()
            .map(|e| vec![e.event.into(), event_plan(e)])
            .collect(),
    );

    let submit = &report.submit_kprobe;
    let mut line = match &submit.fallback {
        None => format!("kprobe {}", submit.targets.join(", ")),
        Some(fallback) => fallback.clone(),
    };
    for skipped in &submit.skipped {
        let _ = write!(line, "; {} skipped: {}", skipped.symbol, skipped.reason);
    }
    let _ = writeln!(out, "  with --attach kprobe, submit uses: {line}");

    let verdict = &report.verdict;
    let requests = format!(
        "{} of {} request events can be traced",
        verdict.request_events_traceable, verdict.request_events
    );
    if verdict.syscalls_traceable {
        let _ = writeln!(
            out,
            "\nverdict: the io_uring system calls can be traced; {requests}"
        );
    } else {
        let _ = writeln!(
            out,
            "\nverdict: the io_uring system calls cannot be traced; {requests}"
        );
        for problem in &verdict.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

/// One probe step's result in words.
pub fn outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok => "ok".into(),
        Outcome::Failed {
            call,
            errno_name,
            message,
            log,
            ..
        } => {
            let mut text = match errno_name {
                Some(name) => format!("failed: {name} ({message}) from {call}"),
                None => format!("failed: {message} ({call})"),
            };
            if let Some(log) = log {
                let _ = write!(text, "; verifier: {log}");
            }
            text
        }
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
    }
}

fn probe_target(probe: &ProgramProbe) -> String {
    match (&probe.target, probe.btf_id) {
        (Some(target), Some(id)) => format!("{target} (BTF id {id})"),
        (Some(target), None) => target.clone(),
        (None, _) => "-".into(),
    }
}

fn probe_result(probe: &ProgramProbe) -> String {
    match &probe.load {
        Outcome::Ok => format!("load ok, attach {}", outcome(&probe.attach)),
        // Nothing was attached: the load's result says it all.
        other => format!("load {}", outcome(other)),
    }
}

fn tracepoint_status(tp: &TracepointStatus) -> String {
    let mut text = match tp.status {
        Presence::Present => "present".to_string(),
        Presence::Absent => "absent".to_string(),
        Presence::Unknown => format!("unknown: {}", tp.error.as_deref().unwrap_or("?")),
    };
    if tp.names.len() > 1 {
        let _ = write!(text, " (names over time: {})", tp.names.join(", "));
    }
    text
}

fn kprobe_target_status(target: &KprobeTarget) -> String {
    let mut text = match target.in_kallsyms {
        None => "kallsyms unreadable".to_string(),
        Some(true) => "in kallsyms".to_string(),
        Some(false) if target.clones.is_empty() => "not in kallsyms".to_string(),
        Some(false) => format!("not in kallsyms (only {})", target.clones.join(", ")),
    };
    if target.in_kallsyms == Some(true) {
        text.push_str(match target.blacklisted {
            None => ", blacklist unreadable",
            Some(true) => ", blacklisted",
            Some(false) => ", not blacklisted",
        });
    }
    text
}

fn event_plan(plan: &EventPlan) -> String {
    let targets = plan.targets.join(", ");
    match plan.hook {
        HookKind::Tracepoint if plan.implemented => match &plan.reason {
            Some(why) if plan.tp_btf_refused => format!(
                "tracepoint {targets} (not tp_btf, refused by the kernel: please report it: {why})"
            ),
            Some(why) => format!("tracepoint {targets} (not tp_btf: {why})"),
            None => format!("tracepoint {targets}"),
        },
        HookKind::TpBtf => format!("tp_btf {targets}"),
        HookKind::Kprobe if plan.implemented => format!("kprobe {targets}"),
        HookKind::Tracepoint => format!("tracepoint {targets} (not implemented yet)"),
        HookKind::Kprobe => format!("kprobe {targets} (not implemented yet)"),
        HookKind::None => format!(
            "not traceable: {}",
            plan.reason.as_deref().unwrap_or("no hook")
        ),
    }
}

/// Appends `rows`, every column but the last padded to its widest cell.
fn table(out: &mut String, indent: &str, rows: Vec<Vec<String>>) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = indent.to_string();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut out = String::new();
        table(
            &mut out,
            "  ",
            vec![
                vec!["a".into(), "bb".into(), "c".into()],
                vec!["dddd".into(), "e".into(), "".into()],
            ],
        );
        assert_eq!(out, "  a     bb  c\n  dddd  e\n");
    }

    #[test]
    fn outcomes_in_words() {
        let failed = Outcome::failed(
            "BPF_RAW_TRACEPOINT_OPEN",
            &std::io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(
            outcome(&failed),
            "failed: EPERM (Operation not permitted) from BPF_RAW_TRACEPOINT_OPEN"
        );
        assert_eq!(outcome(&Outcome::skipped("no PMU")), "skipped: no PMU");
    }
}
