//! What to run, written by xtask into the initramfs: one directive per
//! line, `#` comments.
//!
//! ```text
//! timeout 120                       # seconds per test
//! threads 1                         # --test-threads
//! env TMPDIR=/tmp                   # the tests' environment (nothing else is passed)
//! arg tour                          # extra argument for every test binary
//! test syscalls /uringtrace-vm/tests/syscalls
//! ```

use std::{path::Path, time::Duration};

pub struct TestBinary {
    pub name: String,
    pub path: String,
}

pub struct Manifest {
    pub timeout: Duration,
    pub threads: u32,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub tests: Vec<TestBinary>,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the manifest {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut manifest = Manifest {
            timeout: Duration::from_secs(120),
            threads: 1,
            env: Vec::new(),
            args: Vec::new(),
            tests: Vec::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || format!("line {}: cannot read {line:?}", n + 1);
            let (directive, value) = line.split_once(' ').ok_or_else(bad)?;
            match directive {
                "timeout" => {
                    manifest.timeout = Duration::from_secs(value.parse().map_err(|_| bad())?)
                }
                "threads" => manifest.threads = value.parse().map_err(|_| bad())?,
                "env" => {
                    let (k, v) = value.split_once('=').ok_or_else(bad)?;
                    manifest.env.push((k.to_string(), v.to_string()));
                }
                "arg" => manifest.args.push(value.to_string()),
                "test" => {
                    let (name, path) = value.split_once(' ').ok_or_else(bad)?;
                    manifest.tests.push(TestBinary {
                        name: name.to_string(),
                        path: path.to_string(),
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let m = Manifest::parse(
            "# comment\ntimeout 30\nthreads 2\nenv TMPDIR=/tmp\narg tour\n\
             test syscalls /t/syscalls\n",
        )
        .unwrap();
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(m.threads, 2);
        assert_eq!(m.env, [("TMPDIR".to_string(), "/tmp".to_string())]);
        assert_eq!(m.args, ["tour"]);
        assert_eq!(m.tests[0].name, "syscalls");
        assert_eq!(m.tests[0].path, "/t/syscalls");
    }

    #[test]
    fn rejects_unknown_directives() {
        assert!(Manifest::parse("frobnicate 1\n").is_err());
    }
}
