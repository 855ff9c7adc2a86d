//! libtest's human output read back into one outcome per test.
//!
//! The test binaries run with one thread and `--show-output`, so every
//! test's captured output (stdout and stderr together) comes back in a
//! `---- <name> stdout ----` section, failures with their panic message.
//! Progress lines (`test <name> ... ok`) are not trusted alone: a test's
//! child process writing to the inherited stderr can land in the middle of
//! one. The outcome is taken from what libtest prints at the end instead:
//! the `failures:` list, and the `test result:` line saying the run ended.

use std::collections::{BTreeMap, BTreeSet};

/// What became of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// `#[ignore]`d, or the test printed `skipped: <why>`.
    Skip(String),
    /// The panic message, on one line.
    Fail(String),
}

/// Longest failure message kept on the per-test line; the whole output is
/// in the console log.
const MESSAGE_MAX: usize = 600;

/// Which list follows a `failures:` or `successes:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Failures,
    Successes,
}

/// Fed line by line with a test binary's output.
#[derive(Debug, Default)]
pub struct Parser {
    /// Captured output per test, from `---- <name> stdout ----` sections.
    sections: BTreeMap<String, Vec<String>>,
    /// The section being read.
    current: Option<String>,
    /// The list being read, after a `failures:`/`successes:` line.
    list: Option<List>,
    failed: BTreeSet<String>,
    /// `test <name> ... ignored[, <reason>]`.
    ignored: BTreeMap<String, String>,
    /// `test <name> ... ok`, for a run that did not reach its end.
    ok: BTreeSet<String>,
    /// The last `test <name> ... ` progress line without an outcome yet:
    /// the test that was running when a run was cut short.
    running: Option<String>,
    /// The `test result:` line was seen: every outcome is final.
    finished: bool,
}

/// Test names from `<binary> --list` output (`<name>: test`).
pub fn parse_list(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

impl Parser {
    pub fn line(&mut self, line: &str) {
        if line == "failures:" || line == "successes:" {
            self.current = None;
            self.list = Some(if line == "failures:" {
                List::Failures
            } else {
                List::Successes
            });
            return;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            self.current = Some(name.to_string());
            self.list = None;
            self.sections.entry(name.to_string()).or_default();
            return;
        }
        if line.starts_with("test result: ") {
            self.current = None;
            self.list = None;
            self.finished = true;
            return;
        }
        if let Some(name) = &self.current {
            if let Some(lines) = self.sections.get_mut(name) {
                lines.push(line.to_string());
            }
            return;
        }
        if self.list == Some(List::Failures)
            && let Some(name) = line.strip_prefix("    ")
        {
            self.failed.insert(name.trim().to_string());
            return;
        }
        if let Some((name, outcome)) = line.strip_prefix("test ").and_then(|l| {
            l.split_once(" ... ")
                .or_else(|| Some((l.strip_suffix(" ...")?, "")))
        }) {
            self.running = Some(name.to_string());
            if outcome == "ok" || outcome == "FAILED" {
                self.running = None;
            }
            if outcome == "ok" {
                self.ok.insert(name.to_string());
            } else if let Some(reason) = outcome.strip_prefix("ignored") {
                self.running = None;
                let reason = reason.trim_start_matches(',').trim();
                self.ignored.insert(name.to_string(), reason.to_string());
            }
        }
    }

    /// One entry per name of `tests` (the binary's `--list`), in that
    /// order: its outcome, or `None` if this run never got to it. `cut`
    /// says why the run stopped early (a timeout, a crash): the test that
    /// was running then fails with it.
    pub fn outcomes(&self, tests: &[String], cut: Option<&str>) -> Vec<(String, Option<Outcome>)> {
        tests
            .iter()
            .map(|name| {
                let section = self.sections.get(name).map(Vec::as_slice).unwrap_or(&[]);
                let outcome = if self.failed.contains(name) {
                    Some(Outcome::Fail(failure_message(section)))
                } else if let Some(reason) = self.ignored.get(name) {
                    Some(Outcome::Skip(if reason.is_empty() {
                        "ignored".to_string()
                    } else {
                        format!("ignored: {reason}")
                    }))
                } else if let Some(reason) = skip_reason(section) {
                    Some(Outcome::Skip(reason))
                } else if self.finished || self.ok.contains(name) {
                    Some(Outcome::Pass)
                } else if self.running.as_ref() == Some(name) {
                    let why = cut.unwrap_or("the test binary ended without a summary");
                    Some(Outcome::Fail(format!("was running when {why}")))
                } else {
                    None
                };
                (name.clone(), outcome)
            })
            .collect()
    }

    /// libtest printed its summary: the binary ran to its end.
    pub fn finished(&self) -> bool {
        self.finished
    }
}

/// `skipped: <why>` anywhere in a test's captured output.
fn skip_reason(section: &[String]) -> Option<String> {
    section.iter().find_map(|l| {
        l.trim()
            .strip_prefix("skipped: ")
            .map(|why| one_line(why.trim()))
    })
}

/// The panic message and where it was raised, on one line.
fn failure_message(section: &[String]) -> String {
    let panic_at = section
        .iter()
        .position(|l| l.starts_with("thread '") && l.contains("panicked at "));
    let text = match panic_at {
        Some(i) => {
            let location = section[i]
                .split_once("panicked at ")
                .map(|(_, at)| at.trim_end_matches(':'))
                .unwrap_or("");
            let message: Vec<&str> = section[i + 1..]
                .iter()
                .take_while(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            format!("{} (at {location})", message.join(" | "))
        }
        None => {
            let lines: Vec<&str> = section
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() {
                "failed without output".to_string()
            } else {
                lines[lines.len().saturating_sub(3)..].join(" | ")
            }
        }
    };
    one_line(&text)
}

fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= MESSAGE_MAX {
        return flat;
    }
    let cut: String = flat.chars().take(MESSAGE_MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(output: &str) -> Parser {
        let mut p = Parser::default();
        for l in output.lines() {
            p.line(l);
        }
        p
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pass_fail_skip_and_ignore() {
        let out = "\
running 4 tests
test a ... ok
test b ... uringtrace: tracing all processes
FAILED
test c ... ok
test d ... ignored, needs a disk

successes:

---- c stdout ----
skipped: no kprobe PMU on this kernel


successes:
    c

failures:

---- b stdout ----
thread 'b' panicked at uringtrace/tests/x.rs:10:5:
assertion `left == right` failed
  left: 1
 right: 2
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    b

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";
        let p = parse(out);
        assert!(p.finished());
        let got = p.outcomes(&names(&["a", "b", "c", "d"]), None);
        let got: Vec<(String, Outcome)> = got
            .into_iter()
            .map(|(n, o)| (n, o.expect("every test has an outcome")))
            .collect();
        assert_eq!(got[0].1, Outcome::Pass);
        assert_eq!(
            got[1].1,
            Outcome::Fail(
                "assertion `left == right` failed | left: 1 | right: 2 \
                 (at uringtrace/tests/x.rs:10:5)"
                    .to_string()
            )
        );
        assert_eq!(
            got[2].1,
            Outcome::Skip("no kprobe PMU on this kernel".to_string())
        );
        assert_eq!(got[3].1, Outcome::Skip("ignored: needs a disk".to_string()));
    }

    #[test]
    fn unfinished_run_fails_the_rest() {
        let p = parse("running 3 tests\ntest a ... ok\ntest b ... \nuringtrace: tracing\n");
        assert!(!p.finished());
        let got = p.outcomes(&names(&["a", "b", "c"]), Some("the test timed out"));
        assert_eq!(got[0].1, Some(Outcome::Pass));
        assert_eq!(
            got[1].1,
            Some(Outcome::Fail(
                "was running when the test timed out".to_string()
            ))
        );
        assert_eq!(got[2].1, None);
    }

    #[test]
    fn list_output() {
        let out = "a::b: test\nc: test\nbench_x: bench\n\n2 tests, 1 benchmark\n";
        assert_eq!(parse_list(out), names(&["a::b", "c"]));
    }
}
