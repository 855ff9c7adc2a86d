//! The rule file format (docs/rules.md): JSON, parsed strictly. Every value
//! is checked while it is parsed (event kinds, opcode names, severities,
//! ATT&CK ids, globs), so that every mistake is reported with its file,
//! line and column; unknown fields are errors, so a typo cannot silently
//! turn a condition off.

use std::{collections::BTreeMap, fmt, path::Path};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    decode::{
        register_opcodes::IO_URING_REGISTER_OPCODES, sqe_flags::IOSQE_FLAGS,
        sqe_opcodes::IO_URING_OPS,
    },
    selection::EVENT_NAMES,
};

/// Why a rule file could not be used. `origin` names the file (or the
/// built-in rules) so that the user knows what to fix.
#[derive(Debug, Error)]
pub enum RuleFileError {
    #[error("cannot read the rule file {origin}: {error}")]
    Read {
        origin: String,
        error: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// One rule file, as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Free text for the reader; JSON has no comments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Named lists of strings, referred to as `"@name"` in string
    /// conditions. Lists of the same name in several files are merged.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// Ids of rules (from earlier files, the built-in ones included) to
    /// turn off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<RuleId>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One rule, as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: RuleId,
    pub severity: Severity,
    /// A MITRE ATT&CK technique id: `T1234` or `T1234.001`.
    pub mitre: MitreId,
    pub explanation: Explanation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(rename = "match", default)]
    pub conditions: Conditions,
    #[serde(default)]
    pub once_per: OncePer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
}

fn enabled_by_default() -> bool {
    true
}

/// What an event must be for the rule to match: every condition given
/// must hold; a list holds when any of its entries does.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Vec<EventKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opcode: Option<Vec<RequestOpcode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_opcode: Option<Vec<RegisterOpcode>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_not: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_path: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr_not: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Vec<Family>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_not: Option<Vec<Glob>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_not: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqe_flags: Option<Vec<SqeFlag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<Vec<WorkerKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sq_thread: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality_set: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// How often a rule may fire for the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OncePer {
    /// Every matching event.
    #[default]
    Event,
    /// Once per request (`req`); events without one fire every time.
    Request,
    /// Once per ring; events without one fire every time.
    Ring,
    /// Once per process (`pid`).
    Process,
    /// Once in the whole session.
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultKind {
    Success,
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Self::Inet => "inet",
            Self::Inet6 => "inet6",
            Self::Unix => "unix",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum WorkerKind {
    #[serde(rename = "io-wq")]
    IoWq,
    #[serde(rename = "sqpoll")]
    SqPoll,
    /// Not on an io_uring kernel thread: the process's own thread.
    #[serde(rename = "none")]
    None,
}

/// A stateful rule: fires on a pattern across events, not on one event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StateSpec {
    /// Requests submitted by a ring's SQ thread while its owner makes no
    /// io_uring_enter on it (docs/rules.md has the exact semantics).
    SqpollWithoutEnter {
        /// SQ-thread submissions, since the owner's last io_uring_enter on
        /// the ring (or since the ring was first seen), that fire the rule.
        #[serde(default = "default_min_requests")]
        min_requests: Count,
    },
}

fn default_min_requests() -> Count {
    Count(3)
}

/// Defines a string newtype checked by `$check` when parsed, so that the
/// error carries the position of the bad value.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// Letters, digits, `.`, `_` and `-`; 1 to 64 of them.
    RuleId,
    |s| {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(format!(
                "rule id `{s}`: use 1 to 64 letters, digits, `.`, `_` or `-`"
            ));
        }
        Ok(())
    }
);

checked_string!(
    /// `T` and four digits, optionally `.` and three digits.
    MitreId,
    |s| {
        let b = s.as_bytes();
        let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
        let ok = match b {
            [b'T', rest @ ..] if rest.len() == 4 => digits(rest),
            [b'T', rest @ ..] if rest.len() == 8 => {
                digits(&rest[..4]) && rest[4] == b'.' && digits(&rest[5..])
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{s}` is not a MITRE ATT&CK technique id (`T1071` or `T1562.006`)"
            ))
        }
    }
);

checked_string!(
    /// Non-empty text.
    Explanation,
    |s| {
        if s.trim().is_empty() {
            Err("the explanation is empty: say what the alert means".into())
        } else {
            Ok(())
        }
    }
);

checked_string!(
    /// An event kind, as in the JSON `event` field.
    EventKind,
    |s| {
        if EVENT_NAMES.contains(&s) {
            Ok(())
        } else {
            Err(format!(
                "unknown event kind `{s}` (one of: {})",
                EVENT_NAMES.join(", ")
            ))
        }
    }
);

checked_string!(
    /// An `IORING_OP_*` name, with or without the prefix.
    RequestOpcode,
    |s| request_opcode(s).map(drop)
);

checked_string!(
    /// An `IORING_REGISTER_*` / `IORING_UNREGISTER_*` name, with or
    /// without `IORING_`.
    RegisterOpcode,
    |s| register_opcode(s).map(drop)
);

checked_string!(
    /// An `IOSQE_*` flag name, with or without the prefix.
    SqeFlag,
    |s| sqe_flag(s).map(drop)
);

checked_string!(
    /// A glob (`*` any run of characters, `/` included; `?` one character;
    /// `\` makes the next character literal), or `@name`: every entry of the
    /// list `name`.
    Glob,
    |s| {
        if s.ends_with('\\') && !s.ends_with("\\\\") {
            return Err(format!("glob `{s}` ends with a lone `\\`"));
        }
        if let Some(list) = s.strip_prefix('@')
            && list.is_empty()
        {
            return Err("`@` needs a list name (`@deny_comm`)".into());
        }
        Ok(())
    }
);

/// At least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Count(pub u64);

impl TryFrom<u64> for Count {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        if n == 0 {
            Err("a count must be at least 1".into())
        } else {
            Ok(Self(n))
        }
    }
}

impl From<Count> for u64 {
    fn from(c: Count) -> u64 {
        c.0
    }
}

pub fn request_opcode(name: &str) -> Result<u8, String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("IORING_OP_") {
        upper
    } else {
        format!("IORING_OP_{upper}")
    };
    IO_URING_OPS
        .value_of(&full)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or_else(|| {
            format!("unknown request opcode `{name}` (`OPENAT`, `IORING_OP_CONNECT`, ...)")
        })
}

pub fn register_opcode(name: &str) -> Result<u32, String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("IORING_") {
        upper
    } else {
        format!("IORING_{upper}")
    };
    IO_URING_REGISTER_OPCODES
        .value_of(&full)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| {
            format!("unknown register opcode `{name}` (`REGISTER_PERSONALITY`, `IORING_REGISTER_BUFFERS`, ...)")
        })
}

pub fn sqe_flag(name: &str) -> Result<u8, String> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("IOSQE_") {
        upper
    } else {
        format!("IOSQE_{upper}")
    };
    IOSQE_FLAGS
        .value_of(&full)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or_else(|| format!("unknown SQE flag `{name}` (`IOSQE_ASYNC`, `IO_LINK`, ...)"))
}

/// Parses one rule file's text. `origin` names it in errors.
pub fn parse(origin: &str, text: &str) -> Result<RuleFile, RuleFileError> {
    let file: RuleFile = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        // serde_json appends the position to the message; it is shown
        // in front instead, as compilers do.
        let message = full
            .rsplit_once(" at line ")
            .map_or(full.as_str(), |(m, _)| m)
            .to_string();
        RuleFileError::Syntax {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            message,
        }
    })?;
    let mut seen = std::collections::HashSet::new();
    for rule in &file.rules {
        if !seen.insert(rule.id.as_str()) {
            return Err(RuleFileError::Invalid {
                origin: origin.to_string(),
                message: format!("two rules have the id `{}`", rule.id),
            });
        }
    }
    Ok(file)
}

/// Reads and parses a rule file.
pub fn read(path: &Path) -> Result<RuleFile, RuleFileError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| RuleFileError::Read {
        origin: origin.clone(),
        error,
    })?;
    parse(&origin, &text)
}
