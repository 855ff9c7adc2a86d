//! The VM suite's report: a table of tests by kernel, the failure
//! messages and skip reasons under it, timings, and the totals.

use std::{path::PathBuf, time::Duration};

use crate::vm::console::{Console, Outcome};

/// Everything known about one kernel's run.
pub struct KernelRun {
    pub name: &'static str,
    pub package: String,
    pub console: Console,
    /// Why the run produced no (trustworthy) result, if it did not.
    pub problem: Option<String>,
    /// Host time from qemu's start to vm-init's first line.
    pub boot: Option<Duration>,
    /// Host time from vm-init's first line to its result line.
    pub tests: Option<Duration>,
    pub total: Duration,
    pub log: PathBuf,
}

pub struct Summary {
    pub failed: u32,
    pub broken_kernels: Vec<&'static str>,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
}

pub fn print(runs: &[KernelRun], wall: Duration) -> Summary {
    // Rows: every test any kernel reported, in the order first seen.
    let mut rows: Vec<(String, String)> = Vec::new();
    for run in runs {
        for t in &run.console.tests {
            let key = (t.binary.clone(), t.test.clone());
            if !rows.contains(&key) {
                rows.push(key);
            }
        }
    }
    let mut reasons: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let row_names: Vec<String> = rows.iter().map(|(b, t)| format!("{b}::{t}")).collect();
    const TOTALS: &str = "passed/failed/skipped";
    let width = row_names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(TOTALS.len());
    let col = runs.iter().map(|r| r.name.len()).max().unwrap_or(4).max(8);

    println!();
    print!("{:width$}", "test");
    for run in runs {
        print!("  {:>col$}", run.name);
    }
    println!();
    for ((binary, test), shown) in rows.iter().zip(&row_names) {
        print!("{shown:width$}");
        for run in runs {
            let outcome = run
                .console
                .tests
                .iter()
                .find(|t| &t.binary == binary && &t.test == test)
                .map(|t| &t.outcome);
            let cell = match outcome {
                None => "-".to_string(),
                Some(Outcome::Pass) => "pass".to_string(),
                Some(Outcome::Fail(message)) => {
                    failures.push(format!("{} {shown}: {message}", run.name));
                    "FAIL".to_string()
                }
                Some(Outcome::Skip(why)) => {
                    let n = match reasons.iter().position(|r| r == why) {
                        Some(n) => n,
                        None => {
                            reasons.push(why.clone());
                            reasons.len() - 1
                        }
                    };
                    format!("skip[{}]", n + 1)
                }
            };
            print!("  {cell:>col$}");
        }
        println!();
    }
    print!("{TOTALS:width$}");
    for run in runs {
        let cell = run
            .console
            .result
            .as_ref()
            .map_or("no result".to_string(), |(_, t)| {
                format!("{}/{}/{}", t.passed, t.failed, t.skipped)
            });
        print!("  {cell:>col$}");
    }
    println!();
    if !reasons.is_empty() {
        println!("\nskipped:");
        for (n, why) in reasons.iter().enumerate() {
            println!("  [{}] {why}", n + 1);
        }
    }
    if !failures.is_empty() {
        println!("\nfailed:");
        for f in &failures {
            println!("  {f}");
        }
    }

    println!("\nkernels:");
    let mut broken = Vec::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for run in runs {
        let release = run
            .console
            .release
            .as_deref()
            .unwrap_or("did not start init");
        let features: Vec<String> = run
            .console
            .features
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "  {} ({release}; {}): boot {}, tests {}, total {}; {}; log {}",
            run.name,
            run.package,
            secs(run.boot),
            secs(run.tests),
            secs(Some(run.total)),
            features.join(" "),
            run.log.display()
        );
        for p in &run.console.init_problems {
            println!("    vm-init: {p}");
        }
        for p in &run.console.kernel_problems {
            println!("    kernel: {p}");
        }
        if let Some(problem) = &run.problem {
            println!("    FAILED: {problem}");
            broken.push(run.name);
        }
        if let Some((_, t)) = &run.console.result {
            passed += t.passed;
            failed += t.failed;
            skipped += t.skipped;
        }
    }
    println!(
        "\nvm-test: {} kernels in {:.0} s: {passed} passed, {failed} failed, {skipped} skipped{}",
        runs.len(),
        wall.as_secs_f64(),
        if broken.is_empty() {
            String::new()
        } else {
            format!("; no result from {}", broken.join(", "))
        }
    );
    Summary {
        failed,
        broken_kernels: broken,
    }
}
