//! What every NDJSON record shares: the schema version, the encoding of a
//! command name, and a serializer that keeps each record on one line and
//! free of characters that terminals or line-oriented tools act on.

use std::borrow::Cow;

use serde::Serialize;

use crate::event::Comm;

/// `"schema"`, the first field of every record. Bumped when a field is
/// removed, renamed, changes type or meaning; not for new fields or new
/// event kinds (docs/events.md, "Versioning").
pub const SCHEMA_VERSION: u32 = 1;

/// `comm` and, when the name is not UTF-8, `comm_hex`: JSON strings are
/// Unicode, so invalid bytes show as U+FFFD in `comm` and exactly in
/// `comm_hex` (two lowercase hex digits per byte).
#[derive(Serialize)]
pub struct CommFields<'a> {
    pub comm: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm_hex: Option<String>,
}

impl<'a> CommFields<'a> {
    pub fn new(comm: &'a Comm) -> Self {
        let (comm, comm_hex) = lossless_text(comm.as_bytes());
        Self { comm, comm_hex }
    }
}

/// Bytes a traced process chose (a name, a path) for a JSON string field
/// and its `_hex` companion: the text (invalid UTF-8 as U+FFFD) and, only
/// when the bytes are not UTF-8, every byte in hex.
pub fn lossless_text(bytes: &[u8]) -> (Cow<'_, str>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (
            String::from_utf8_lossy(bytes),
            Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        ),
    }
}

/// Appends `record` and its newline to `out`.
pub fn write_line(record: &impl Serialize, out: &mut Vec<u8>) {
    // Serializing our own structs (no maps with non-string keys) cannot
    // fail.
    let _ = super::json_writer::write(record, out);
    out.push(b'\n');
}

/// The definition json_writer is tested against: serde_json, which
/// escapes `"`, `\` and C0 controls, with this formatter, which also
/// escapes DEL, the C1 controls (U+0080..U+009F: U+009B is a CSI to some
/// terminals) and the Unicode line and paragraph separators (line breaks to
/// some tools), so `tail -f` of a trace cannot be steered by a traced
/// process's name.
#[cfg(test)]
pub(crate) fn reference_json(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    value.serialize(&mut serializer).expect("serializes");
    out
}

#[cfg(test)]
struct TerminalSafe;

#[cfg(test)]
fn needs_escape(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // Every escape here starts at a byte of 0x7f or above (DEL, or the
        // lead byte of U+0080.. in UTF-8): nearly every fragment (keys,
        // names, numbers as text) has none and is copied whole.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices().filter(|&(_, c)| needs_escape(c)) {
            writer.write_all(&fragment.as_bytes()[start..i])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Named<'a> {
        schema: u32,
        #[serde(flatten)]
        comm: CommFields<'a>,
    }

    fn line(raw: &[u8]) -> String {
        let comm = Comm::from_kernel(raw);
        let mut out = Vec::new();
        write_line(
            &Named {
                schema: SCHEMA_VERSION,
                comm: CommFields::new(&comm),
            },
            &mut out,
        );
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn utf8_names_have_no_hex() {
        assert_eq!(line(b"nginx"), "{\"schema\":1,\"comm\":\"nginx\"}\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            line(b"a\n\"\\\x1b[31m\x7f"),
            "{\"schema\":1,\"comm\":\"a\\n\\\"\\\\\\u001b[31m\\u007f\"}\n"
        );
        assert_eq!(
            line("\u{9b}x\u{2028}".as_bytes()),
            "{\"schema\":1,\"comm\":\"\\u009bx\\u2028\"}\n"
        );
    }

    #[test]
    fn invalid_utf8_keeps_its_bytes_in_hex() {
        let out = line(b"\xff\xfeok");
        assert_eq!(
            out,
            "{\"schema\":1,\"comm\":\"\u{fffd}\u{fffd}ok\",\"comm_hex\":\"fffe6f6b\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["comm_hex"], "fffe6f6b");
    }
}

/// `--context`: the process's parent, executable, cgroup and namespaces.
#[derive(Serialize)]
pub struct ProcessFields<'a> {
    pub ppid: Option<u32>,
    pub exe: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_hex: Option<String>,
    pub cgroup: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_hex: Option<String>,
    pub cgroup_id: Option<u64>,
    pub container_id: Option<&'a str>,
    pub pid_ns: Option<u64>,
    pub mnt_ns: Option<u64>,
}

impl<'a> ProcessFields<'a> {
    pub fn new(c: &'a crate::process_context::ProcessContext) -> Self {
        let (exe, exe_hex) = match c.exe.as_deref().map(lossless_text) {
            Some((t, h)) => (Some(t), h),
            None => (None, None),
        };
        let (cgroup, cgroup_hex) = match c.cgroup.as_deref().map(lossless_text) {
            Some((t, h)) => (Some(t), h),
            None => (None, None),
        };
        Self {
            ppid: c.ppid,
            exe,
            exe_hex,
            cgroup,
            cgroup_hex,
            cgroup_id: c.cgroup_id,
            container_id: c.container_id.as_deref(),
            pid_ns: c.pid_ns,
            mnt_ns: c.mnt_ns,
        }
    }
}
