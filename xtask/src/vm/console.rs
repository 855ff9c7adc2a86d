//! Reads a VM's console back: the `uringtrace-vm: ` lines vm-init prints
//! (see xtask/vm-init/src/main.rs), the tracepoint formats between their
//! markers, and the kernel's own complaints.

/// Every line of vm-init's protocol starts with this (possibly after
/// kernel output on the same console line).
pub const PREFIX: &str = "uringtrace-vm: ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip(String),
    Fail(String),
}

#[derive(Debug)]
pub struct TestLine {
    pub binary: String,
    pub test: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

#[derive(Debug, Default)]
pub struct Console {
    /// `uname -r` in the VM.
    pub release: Option<String>,
    /// (feature, yes/no).
    pub features: Vec<(String, String)>,
    /// (event, e.g. `io_uring/io_uring_complete`; its format file).
    pub formats: Vec<(String, String)>,
    pub tests: Vec<TestLine>,
    /// (binary, status, seconds).
    pub binaries: Vec<(String, String, String)>,
    pub result: Option<(String, Totals)>,
    /// vm-init's warnings and errors.
    pub init_problems: Vec<String>,
    /// Kernel oopses, BUGs and WARNINGs: a test can pass while the kernel
    /// complained.
    pub kernel_problems: Vec<String>,
}

/// A printk line on the console: `[   12.345678] ...`.
fn is_kernel_line(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|l| l.split_once(']'))
        .is_some_and(|(stamp, _)| {
            let t = stamp.trim();
            !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

pub fn parse(lines: &[String]) -> Console {
    let mut console = Console::default();
    let mut format: Option<(String, String)> = None;
    for line in lines {
        if is_kernel_line(line)
            && [
                "Oops",
                "BUG:",
                "WARNING:",
                "general protection fault",
                // Where a kernel-mode fault happened: the useful part of an oops.
                "RIP: 0010:",
                "Kernel panic",
            ]
            .iter()
            .any(|w| line.contains(w))
        {
            console.kernel_problems.push(line.clone());
        }
        let Some(message) = line.find(PREFIX).map(|at| &line[at + PREFIX.len()..]) else {
            if let Some((_, text)) = &mut format
                && !is_kernel_line(line)
            {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        };
        let (word, rest) = message.split_once(' ').unwrap_or((message, ""));
        match word {
            "kernel" => console.release = Some(rest.to_string()),
            "feature" => {
                if let Some((name, value)) = rest.split_once(' ') {
                    console.features.push((name.to_string(), value.to_string()));
                }
            }
            "begin" => {
                if let Some(event) = rest.strip_prefix("format ") {
                    format = Some((event.to_string(), String::new()));
                }
            }
            "end" => {
                if let Some(event) = rest.strip_prefix("format ") {
                    if let Some((name, text)) = format.take()
                        && name == event
                    {
                        console.formats.push((name, text));
                    }
                } else if let Some(b) = rest.strip_prefix("test-binary ") {
                    let mut it = b.split(' ');
                    let name = it.next().unwrap_or("").to_string();
                    let field = |key: &str| {
                        b.split(' ')
                            .find_map(|f| f.strip_prefix(key))
                            .unwrap_or("?")
                            .to_string()
                    };
                    console
                        .binaries
                        .push((name, field("status="), field("seconds=")));
                }
            }
            "test" => {
                let mut it = rest.splitn(4, ' ');
                let (Some(binary), Some(test), Some(kind)) = (it.next(), it.next(), it.next())
                else {
                    console.init_problems.push(format!("unreadable: {line}"));
                    continue;
                };
                let detail = it.next().unwrap_or("").to_string();
                let outcome = match kind {
                    "pass" => Outcome::Pass,
                    "skip" => Outcome::Skip(detail),
                    _ => Outcome::Fail(detail),
                };
                console.tests.push(TestLine {
                    binary: binary.to_string(),
                    test: test.to_string(),
                    outcome,
                });
            }
            "result" => console.result = parse_result(rest),
            "warning:" | "error" => console.init_problems.push(message.to_string()),
            _ => {}
        }
    }
    console
}

/// `kernel=<r> passed=N failed=N skipped=N`.
fn parse_result(rest: &str) -> Option<(String, Totals)> {
    let field = |key: &str| rest.split(' ').find_map(|f| f.strip_prefix(key));
    let count = |key: &str| field(key)?.parse().ok();
    Some((
        field("kernel=")?.to_string(),
        Totals {
            passed: count("passed=")?,
            failed: count("failed=")?,
            skipped: count("skipped=")?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines() {
        let text = "\
[    0.000000] Linux version 6.1.0-56-amd64
uringtrace-vm: kernel 6.1.0-56-amd64
uringtrace-vm: feature kprobe_pmu yes
uringtrace-vm: begin format io_uring/io_uring_complete
name: io_uring_complete
[    3.100000] random: crng init done
\tfield:int res;\toffset:16;\tsize:4;\tsigned:1;
uringtrace-vm: end format io_uring/io_uring_complete
uringtrace-vm: begin test-binary session
uringtrace-vm: end test-binary session status=exit-101 seconds=12.5
uringtrace-vm: test session sigint_detaches_cleanly pass
uringtrace-vm: test session x skip no kprobe PMU
uringtrace-vm: test session y fail assertion failed (at a.rs:1:1)
[   20.000000] WARNING: CPU: 0 PID: 1 at kernel/bpf/x.c:1
uringtrace-vm: result kernel=6.1.0-56-amd64 passed=1 failed=1 skipped=1
";
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let c = parse(&lines);
        assert_eq!(c.release.as_deref(), Some("6.1.0-56-amd64"));
        assert_eq!(c.features, [("kprobe_pmu".to_string(), "yes".to_string())]);
        assert_eq!(
            c.formats,
            [(
                "io_uring/io_uring_complete".to_string(),
                "name: io_uring_complete\n\tfield:int res;\toffset:16;\tsize:4;\tsigned:1;\n"
                    .to_string()
            )]
        );
        assert_eq!(c.tests.len(), 3);
        assert_eq!(
            c.tests[1].outcome,
            Outcome::Skip("no kprobe PMU".to_string())
        );
        assert_eq!(
            c.tests[2].outcome,
            Outcome::Fail("assertion failed (at a.rs:1:1)".to_string())
        );
        assert_eq!(
            c.binaries,
            [(
                "session".to_string(),
                "exit-101".to_string(),
                "12.5".to_string()
            )]
        );
        assert_eq!(
            c.result,
            Some((
                "6.1.0-56-amd64".to_string(),
                Totals {
                    passed: 1,
                    failed: 1,
                    skipped: 1
                }
            ))
        );
        assert_eq!(c.kernel_problems.len(), 1);
    }
}
