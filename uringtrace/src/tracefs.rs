//! Finding tracefs (mounting it when nobody has) and reading tracepoint
//! record layouts from its `format` files: the only portable source of
//! field offsets for Rust eBPF, which has no CO-RE.

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use thiserror::Error;

const MOUNT_POINTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it on /sys/kernel/tracing failed ({0}); \
         mount it with `mount -t tracefs nodev /sys/kernel/tracing`"
    )]
    Mount(std::io::Error),
    #[error("tracepoint {category}:{name} does not exist on this kernel ({path} missing)")]
    NoTracepoint {
        category: String,
        name: String,
        path: String,
    },
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no field `{field}` in the tracepoint format")]
    NoField { path: String, field: String },
}

/// The tracefs root with tracepoint events in it. Mounts tracefs on
/// /sys/kernel/tracing when neither usual place has it, as perf does: a
/// fresh container or minimal VM often has sysfs but not tracefs.
pub fn root() -> Result<PathBuf, TracefsError> {
    if let Some(found) = MOUNT_POINTS
        .iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(found.to_path_buf());
    }
    let target = MOUNT_POINTS[0];
    let c_target = CString::new(target).expect("no NUL in a constant");
    let fstype = CString::new("tracefs").expect("no NUL in a constant");
    // SAFETY: plain mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            c_target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(TracefsError::Mount(std::io::Error::last_os_error()));
    }
    Ok(PathBuf::from(target))
}

/// One `field:` line of a format file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    /// `signed:1`: values narrower than 64 bits sign-extend.
    pub signed: bool,
    /// A `__data_loc` field: where a variable-length string or array sits
    /// in the record, not a value of its own.
    pub data_loc: bool,
}

#[derive(Debug, Clone)]
pub struct Format {
    pub path: String,
    /// Fields after the common_* header, in record order.
    pub fields: Vec<Field>,
}

impl Format {
    pub fn field(&self, name: &str) -> Result<&Field, TracefsError> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| TracefsError::NoField {
                path: self.path.clone(),
                field: name.to_string(),
            })
    }
}

pub fn format(root: &Path, category: &str, name: &str) -> Result<Format, TracefsError> {
    let dir = root.join("events").join(category).join(name);
    let path = dir.join("format");
    if !dir.is_dir() {
        return Err(TracefsError::NoTracepoint {
            category: category.into(),
            name: name.into(),
            path: dir.display().to_string(),
        });
    }
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(parse_format(&path.display().to_string(), &text))
}

/// Parses lines like
/// `field:unsigned int fd; offset:16; size:8; signed:0;`; the field name is
/// the last word of the declaration, without any array suffix.
pub fn parse_format(path: &str, text: &str) -> Format {
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut decl = None;
        let mut offset = None;
        let mut size = None;
        let mut signed = false;
        for part in rest.split(';').map(str::trim) {
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v == "1";
            } else if decl.is_none() && !part.is_empty() {
                decl = Some(part);
            }
        }
        let (Some(decl), Some(offset), Some(size)) = (decl, offset, size) else {
            continue;
        };
        let last = decl.rsplit([' ', '*']).next().unwrap_or(decl);
        let name = last.split('[').next().unwrap_or(last).to_string();
        if name.starts_with("common_") {
            continue;
        }
        fields.push(Field {
            name,
            offset,
            size,
            signed,
            data_loc: decl.starts_with("__data_loc"),
        });
    }
    Format {
        path: path.to_string(),
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTER_6_18: &str = "name: sys_enter_io_uring_enter
ID: 2132
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u32 to_submit;\toffset:24;\tsize:8;\tsigned:0;
\tfield:u32 min_complete;\toffset:32;\tsize:8;\tsigned:0;
\tfield:u32 flags;\toffset:40;\tsize:8;\tsigned:0;
\tfield:const void * argp;\toffset:48;\tsize:8;\tsigned:0;
\tfield:size_t argsz;\toffset:56;\tsize:8;\tsigned:0;
";

    #[test]
    fn parses_syscall_enter_format() {
        let f = parse_format("x", ENTER_6_18);
        let names: Vec<_> = f.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "__syscall_nr",
                "fd",
                "to_submit",
                "min_complete",
                "flags",
                "argp",
                "argsz"
            ]
        );
        assert_eq!(f.field("argp").unwrap().offset, 48);
        assert_eq!(f.field("fd").unwrap().size, 8);
        assert!(f.field("nope").is_err());
    }

    #[test]
    fn parses_data_loc_and_arrays() {
        let text = "\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;";
        let f = parse_format("x", text);
        assert_eq!(f.field("parent_comm").unwrap().offset, 8);
        assert_eq!(f.field("child_pid").unwrap().offset, 20);
        assert!(f.field("child_pid").unwrap().signed);
        assert!(!f.field("parent_comm").unwrap().signed);
        assert_eq!(f.field("comm").unwrap().size, 16);
    }
}
