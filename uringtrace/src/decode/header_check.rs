//! Checks the decode tables against the kernel's own uapi headers: the ones
//! installed on the build machine and, when `URINGTRACE_KERNEL_HEADERS`
//! names an include directory, a newer set (the xtask extracts Debian sid's
//! linux-libc-dev there).
//!
//! The rule: every name a header defines in one of the checked groups must
//! be in our table with the header's value. A name the header has and we
//! lack is a failure too, because the tracer has to know every flag of the
//! kernels it runs on; the fix is to add it, noting the release that added
//! it. Names we have and an older header lacks are fine.

use super::cqe_flags::{IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_TSTAMP_HW, IORING_CQE_FLAGS};
use super::enter_flags::IO_URING_ENTER_FLAGS;
use super::errno_names::errno_name;
use super::register_opcodes::{
    IO_URING_REGISTER_OPCODES, IORING_REGISTER_USE_REGISTERED_RING, USE_REGISTERED_RING_NAME,
};
use super::setup_features::IO_URING_FEATURES;
use super::setup_flags::IO_URING_SETUP_FLAGS;
use super::sqe_flags::IOSQE_FLAGS;
use super::sqe_opcodes::IO_URING_OPS;
use std::path::{Path, PathBuf};

/// The include directory of the machine's own linux-libc-dev.
const INSTALLED_INCLUDE_DIR: &str = "/usr/include";

/// Names an include directory holding a newer `linux/io_uring.h`.
const NEWER_HEADERS_ENV: &str = "URINGTRACE_KERNEL_HEADERS";

// ---------------------------------------------------------------------------
// A small C header reader: enough of the preprocessor and of enums to read
// the uapi headers' constants, which are written as plain numbers,
// `(1U << n)`, `1U << n`, `(1U << SOME_BIT)` with SOME_BIT an enumerator,
// `((__u32)1 << SOME_SHIFT)`, implicitly numbered enumerators, and
// enumerators with `= value`.
// ---------------------------------------------------------------------------

/// The constants of one header.
#[derive(Debug, Default)]
struct Header {
    /// Object-like `#define`s in file order: name and body text.
    defines: Vec<(String, String)>,
    /// Each `enum { ... }` in file order, its enumerators with values.
    enums: Vec<Vec<(String, Result<u64, String>)>>,
}

impl Header {
    fn parse(text: &str) -> Self {
        let text = strip_comments(&text.replace("\\\n", " "));
        let mut header = Header::default();
        let mut code = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some(directive) = trimmed.strip_prefix('#') {
                if let Some(define) = directive.trim_start().strip_prefix("define") {
                    header.parse_define(define);
                }
            } else {
                code.push_str(line);
                code.push('\n');
            }
        }
        header.parse_enums(&code);
        header
    }

    fn parse_define(&mut self, rest: &str) {
        if !rest.starts_with([' ', '\t']) {
            return;
        }
        let rest = rest.trim_start();
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, body) = rest.split_at(name_len);
        // Function-like macros take arguments; they are not constants.
        if name.is_empty() || body.starts_with('(') {
            return;
        }
        let body = body.trim();
        if !body.is_empty() {
            self.defines.push((name.to_string(), body.to_string()));
        }
    }

    fn parse_enums(&mut self, code: &str) {
        let mut rest = code;
        while let Some(at) = find_word(rest, "enum") {
            rest = &rest[at + "enum".len()..];
            let after_tag = rest
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
                .trim_start();
            // `enum tag name;` declares a variable, not a list of constants.
            let Some(body) = after_tag.strip_prefix('{') else {
                continue;
            };
            let Some(end) = body.find('}') else {
                break;
            };
            let members = self.evaluate_enum(&body[..end]);
            self.enums.push(members);
            rest = &body[end..];
        }
    }

    fn evaluate_enum(&self, body: &str) -> Vec<(String, Result<u64, String>)> {
        let mut members: Vec<(String, Result<u64, String>)> = Vec::new();
        let mut next: Result<u64, String> = Ok(0);
        for item in split_top_level_commas(body) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (name, value) = match item.split_once('=') {
                Some((name, expr)) => (name.trim(), self.eval_with(expr, &members)),
                None => (item, next.clone()),
            };
            next = value
                .as_ref()
                .map(|v| v.wrapping_add(1))
                .map_err(Clone::clone);
            members.push((name.to_string(), value));
        }
        members
    }

    /// Every enumerator of every enum, for expressions that refer to them.
    fn enumerator(&self, name: &str) -> Option<&Result<u64, String>> {
        self.enums
            .iter()
            .flatten()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn define(&self, name: &str) -> Option<&str> {
        self.defines
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body.as_str())
    }

    /// The value of a `#define` or enumerator called `name`.
    fn value(&self, name: &str) -> Result<u64, String> {
        self.eval_name(name, &[], 0)
    }

    fn eval_with(
        &self,
        expr: &str,
        current_enum: &[(String, Result<u64, String>)],
    ) -> Result<u64, String> {
        Expr::new(self, current_enum, expr, 0)?.parse()
    }

    fn eval_name(
        &self,
        name: &str,
        current_enum: &[(String, Result<u64, String>)],
        depth: usize,
    ) -> Result<u64, String> {
        if depth > 16 {
            return Err(format!("{name}: macro nesting too deep"));
        }
        if let Some((_, value)) = current_enum.iter().rev().find(|(n, _)| n == name) {
            return value.clone();
        }
        if let Some(value) = self.enumerator(name) {
            return value.clone();
        }
        match self.define(name) {
            Some(body) => Expr::new(self, current_enum, body, depth + 1)?.parse(),
            None => Err(format!("unknown identifier {name}")),
        }
    }

    /// Constants whose names start with `prefix`: both `#define`s and
    /// enumerators, since the headers use both for flags.
    fn with_prefix(&self, prefix: &str) -> Vec<(String, Result<u64, String>)> {
        let defines = self
            .defines
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| (name.clone(), self.value(name)));
        let enumerators = self
            .enums
            .iter()
            .flatten()
            .filter(|(name, _)| name.starts_with(prefix))
            .cloned();
        defines.chain(enumerators).collect()
    }

    /// The members of the enum that has an enumerator called `anchor`
    /// (older headers leave the io_uring enums anonymous).
    fn enum_containing(&self, anchor: &str) -> Option<&[(String, Result<u64, String>)]> {
        self.enums
            .iter()
            .find(|members| members.iter().any(|(name, _)| name == anchor))
            .map(Vec::as_slice)
    }
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                out.push_str(&rest[..b]);
                out.push(' ');
                rest = match rest[b + 2..].find("*/") {
                    Some(end) => &rest[b + 2 + end + 2..],
                    None => "",
                };
            }
            (_, Some(l)) => {
                out.push_str(&rest[..l]);
                rest = match rest[l..].find('\n') {
                    Some(end) => &rest[l + end..],
                    None => "",
                };
            }
            (_, None) => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// Byte offset of `word` standing alone (not part of a longer identifier).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|i| i + from) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn split_top_level_commas(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(u64),
    Ident(String),
    Op(&'static str),
}

fn tokenize(expr: &str) -> Result<Vec<Token>, String> {
    const OPS: [&str; 11] = ["<<", ">>", "(", ")", "|", "&", "+", "-", "~", "*", "^"];
    let mut tokens = Vec::new();
    let mut rest = expr.trim_start();
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_ascii_digit() {
            let len = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            tokens.push(Token::Num(parse_number(&rest[..len])?));
            rest = &rest[len..];
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            tokens.push(Token::Ident(rest[..len].to_string()));
            rest = &rest[len..];
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = &rest[op.len()..];
        } else {
            return Err(format!("cannot read {rest:?} in {expr:?}"));
        }
        rest = rest.trim_start();
    }
    Ok(tokens)
}

fn parse_number(literal: &str) -> Result<u64, String> {
    let digits = literal.trim_end_matches(['u', 'U', 'l', 'L']);
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse()
    };
    parsed.map_err(|e| format!("bad number {literal:?}: {e}"))
}

/// Type names that may appear in casts such as `((__u32)1 << 16)`.
const CAST_TYPES: [&str; 12] = [
    "__u8", "__u16", "__u32", "__u64", "__s8", "__s16", "__s32", "__s64", "unsigned", "int",
    "long", "char",
];

/// Recursive-descent evaluation of a constant expression, with C's
/// precedence for the operators the headers use.
struct Expr<'a> {
    header: &'a Header,
    current_enum: &'a [(String, Result<u64, String>)],
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    text: String,
}

impl<'a> Expr<'a> {
    fn new(
        header: &'a Header,
        current_enum: &'a [(String, Result<u64, String>)],
        text: &str,
        depth: usize,
    ) -> Result<Self, String> {
        Ok(Self {
            header,
            current_enum,
            tokens: tokenize(text)?,
            pos: 0,
            depth,
            text: text.to_string(),
        })
    }

    fn parse(mut self) -> Result<u64, String> {
        let value = self.bit_or()?;
        match self.tokens.get(self.pos) {
            None => Ok(value),
            Some(t) => Err(format!("unexpected {t:?} in {:?}", self.text)),
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.tokens.get(self.pos), Some(Token::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn bit_or(&mut self) -> Result<u64, String> {
        let mut v = self.bit_xor()?;
        while self.eat("|") {
            v |= self.bit_xor()?;
        }
        Ok(v)
    }

    fn bit_xor(&mut self) -> Result<u64, String> {
        let mut v = self.bit_and()?;
        while self.eat("^") {
            v ^= self.bit_and()?;
        }
        Ok(v)
    }

    fn bit_and(&mut self) -> Result<u64, String> {
        let mut v = self.shift()?;
        while self.eat("&") {
            v &= self.shift()?;
        }
        Ok(v)
    }

    fn shift(&mut self) -> Result<u64, String> {
        let mut v = self.additive()?;
        loop {
            if self.eat("<<") {
                let by = self.additive()?;
                v = v.checked_shl(to_shift(by)?).ok_or("shift too far")?;
            } else if self.eat(">>") {
                let by = self.additive()?;
                v = v.checked_shr(to_shift(by)?).ok_or("shift too far")?;
            } else {
                return Ok(v);
            }
        }
    }

    fn additive(&mut self) -> Result<u64, String> {
        let mut v = self.multiplicative()?;
        loop {
            if self.eat("+") {
                v = v.wrapping_add(self.multiplicative()?);
            } else if self.eat("-") {
                v = v.wrapping_sub(self.multiplicative()?);
            } else {
                return Ok(v);
            }
        }
    }

    fn multiplicative(&mut self) -> Result<u64, String> {
        let mut v = self.unary()?;
        while self.eat("*") {
            v = v.wrapping_mul(self.unary()?);
        }
        Ok(v)
    }

    fn unary(&mut self) -> Result<u64, String> {
        if self.eat("~") {
            return Ok(!self.unary()?);
        }
        if self.eat("-") {
            return Ok(self.unary()?.wrapping_neg());
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.is_cast() {
            self.pos += 3;
            return self.unary();
        }
        self.primary()
    }

    fn is_cast(&self) -> bool {
        matches!(
            (self.tokens.get(self.pos), self.tokens.get(self.pos + 1), self.tokens.get(self.pos + 2)),
            (Some(Token::Op("(")), Some(Token::Ident(ty)), Some(Token::Op(")")))
                if CAST_TYPES.contains(&ty.as_str())
        )
    }

    fn primary(&mut self) -> Result<u64, String> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        match token {
            Some(Token::Num(n)) => Ok(n),
            Some(Token::Ident(name)) => {
                self.header
                    .eval_name(&name, self.current_enum, self.depth + 1)
            }
            Some(Token::Op("(")) => {
                let v = self.bit_or()?;
                if self.eat(")") {
                    Ok(v)
                } else {
                    Err(format!("missing ) in {:?}", self.text))
                }
            }
            other => Err(format!("unexpected {other:?} in {:?}", self.text)),
        }
    }
}

fn to_shift(by: u64) -> Result<u32, String> {
    u32::try_from(by).map_err(|_| format!("shift by {by}"))
}

// ---------------------------------------------------------------------------
// What is checked.
// ---------------------------------------------------------------------------

/// How a group's names are picked out of a header.
enum Select {
    /// `#define`s and enumerators whose names start with this.
    Prefix(&'static str),
    /// All members of the enum that has this enumerator.
    EnumWith(&'static str),
    /// Exactly these names, where the header has them.
    Names(&'static [&'static str]),
}

/// Names a group's selection catches that are not table entries.
enum Exclude {
    /// One name, with the reason it is not in the table.
    Name(&'static str, &'static str),
    /// Every name with this suffix, with the reason.
    Suffix(&'static str, &'static str),
}

impl Exclude {
    fn matches(&self, name: &str) -> bool {
        match self {
            Exclude::Name(n, _why) => *n == name,
            Exclude::Suffix(s, _why) => name.ends_with(s),
        }
    }
}

struct Group {
    table: &'static str,
    select: Select,
    exclude: &'static [Exclude],
    ours: fn(&str) -> Option<u64>,
}

fn groups() -> Vec<Group> {
    vec![
        Group {
            table: "enter_flags::IO_URING_ENTER_FLAGS",
            select: Select::Prefix("IORING_ENTER_"),
            exclude: &[],
            ours: |name| IO_URING_ENTER_FLAGS.value_of(name),
        },
        Group {
            table: "setup_flags::IO_URING_SETUP_FLAGS",
            select: Select::Prefix("IORING_SETUP_"),
            exclude: &[],
            ours: |name| IO_URING_SETUP_FLAGS.value_of(name),
        },
        Group {
            table: "setup_features::IO_URING_FEATURES",
            select: Select::Prefix("IORING_FEAT_"),
            exclude: &[],
            ours: |name| IO_URING_FEATURES.value_of(name),
        },
        Group {
            table: "sqe_flags::IOSQE_FLAGS",
            select: Select::Prefix("IOSQE_"),
            exclude: &[Exclude::Suffix(
                "_BIT",
                "bit positions (enum io_uring_sqe_flags_bit); the IOSQE_* flags built from \
                 them are what the table holds and are checked",
            )],
            ours: |name| IOSQE_FLAGS.value_of(name),
        },
        Group {
            table: "cqe_flags::IORING_CQE_FLAGS",
            select: Select::Prefix("IORING_CQE_F_"),
            exclude: &[],
            ours: |name| {
                // Kept out of the table (it overlaps the buffer id bits) but
                // still a name the tracer knows.
                if name == "IORING_CQE_F_TSTAMP_HW" {
                    return Some(u64::from(IORING_CQE_F_TSTAMP_HW));
                }
                IORING_CQE_FLAGS.value_of(name)
            },
        },
        Group {
            table: "cqe_flags constants",
            select: Select::Names(&["IORING_CQE_BUFFER_SHIFT"]),
            exclude: &[],
            ours: |name| {
                (name == "IORING_CQE_BUFFER_SHIFT").then_some(u64::from(IORING_CQE_BUFFER_SHIFT))
            },
        },
        Group {
            table: "sqe_opcodes::IO_URING_OPS",
            select: Select::EnumWith("IORING_OP_NOP"),
            exclude: &[Exclude::Name(
                "IORING_OP_LAST",
                "a count, not an opcode; checked to be one past the header's last opcode",
            )],
            ours: |name| IO_URING_OPS.value_of(name),
        },
        Group {
            table: "register_opcodes::IO_URING_REGISTER_OPCODES",
            select: Select::EnumWith("IORING_REGISTER_BUFFERS"),
            exclude: &[Exclude::Name(
                "IORING_REGISTER_LAST",
                "a count, not an opcode; checked to be one past the header's last opcode",
            )],
            ours: |name| {
                // A modifier bit, not an opcode: it has its own constant.
                if name == USE_REGISTERED_RING_NAME {
                    return Some(u64::from(IORING_REGISTER_USE_REGISTERED_RING));
                }
                IO_URING_REGISTER_OPCODES.value_of(name)
            },
        },
    ]
}

/// Compares one io_uring header against every group; returns the problems.
fn check_io_uring_header(header: &Header) -> Vec<String> {
    let mut problems = Vec::new();
    for group in groups() {
        let selected: Vec<(String, Result<u64, String>)> = match group.select {
            Select::Prefix(prefix) => header.with_prefix(prefix),
            Select::EnumWith(anchor) => match header.enum_containing(anchor) {
                Some(members) => members.to_vec(),
                None => {
                    problems.push(format!("{}: no enum with {anchor} found", group.table));
                    continue;
                }
            },
            Select::Names(names) => names
                .iter()
                .filter(|name| header.define(name).is_some() || header.enumerator(name).is_some())
                .map(|name| (name.to_string(), header.value(name)))
                .collect(),
        };
        if selected.is_empty() {
            problems.push(format!(
                "{}: the header has none of its names (reader broken?)",
                group.table
            ));
        }
        for (name, value) in &selected {
            if group.exclude.iter().any(|e| e.matches(name)) {
                continue;
            }
            match (value, (group.ours)(name)) {
                (Err(e), _) => problems.push(format!("{name}: cannot evaluate: {e}")),
                (Ok(v), None) => problems.push(format!(
                    "{name} = {v:#x} is in the header but missing from {}",
                    group.table
                )),
                (Ok(v), Some(ours)) if ours != *v => problems.push(format!(
                    "{name}: header says {v:#x}, {} says {ours:#x}",
                    group.table
                )),
                _ => {}
            }
        }
        if let Select::EnumWith(_) = group.select {
            problems.extend(check_last_marker(&selected));
        }
    }
    problems
}

/// The `*_LAST` member must be one past the last real member, or the reader
/// has miscounted an implicitly numbered enum.
fn check_last_marker(members: &[(String, Result<u64, String>)]) -> Option<String> {
    let last = members.iter().find(|(name, _)| name.ends_with("_LAST"))?;
    let highest = members
        .iter()
        .filter(|(name, _)| !name.ends_with("_LAST") && name != USE_REGISTERED_RING_NAME)
        .filter_map(|(_, v)| v.as_ref().ok())
        .max()
        .copied();
    match (&last.1, highest) {
        (Ok(l), Some(h)) if *l == h + 1 => None,
        (l, h) => Some(format!(
            "{}: {l:?}, but the highest member is {h:?}",
            last.0
        )),
    }
}

/// Compares the asm-generic errno headers with `errno_name`: each errno
/// number must have its header name, and each alias (`#define EWOULDBLOCK
/// EAGAIN`) must resolve to the name it stands for.
fn check_errno_headers(header: &Header) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = 0;
    for (name, body) in &header.defines {
        let is_errno = name.len() > 1
            && name.starts_with('E')
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !is_errno {
            continue;
        }
        seen += 1;
        let primary = resolve_alias(header, name, body);
        let value = header
            .value(name)
            .and_then(|v| i32::try_from(v).map_err(|e| e.to_string()));
        match value {
            Err(e) => problems.push(format!("{name}: cannot evaluate: {e}")),
            Ok(v) if errno_name(v) != Some(primary) => problems.push(format!(
                "{name} = {v}: expected {primary}, errno_names has {:?}",
                errno_name(v)
            )),
            Ok(_) => {}
        }
    }
    if seen < 100 {
        problems.push(format!("only {seen} errno names found (reader broken?)"));
    }
    problems
}

/// Follows `#define ALIAS TARGET` chains to the name defined as a number.
fn resolve_alias<'h>(header: &'h Header, name: &'h str, body: &'h str) -> &'h str {
    let (mut name, mut body) = (name, body);
    for _ in 0..8 {
        let is_ident = body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && body.starts_with(|c: char| c.is_ascii_alphabetic());
        match header.define(body) {
            Some(next) if is_ident => (name, body) = (body, next),
            _ => break,
        }
    }
    name
}

// ---------------------------------------------------------------------------
// Running the checks on real header directories.
// ---------------------------------------------------------------------------

fn read_header(include_dir: &Path, relative: &str) -> Result<String, String> {
    let path = include_dir.join(relative);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// "6.1.187"-style version of a header set, from `linux/version.h`.
fn header_version(include_dir: &Path) -> String {
    let Ok(text) = read_header(include_dir, "linux/version.h") else {
        return "unknown version".to_string();
    };
    let header = Header::parse(&text);
    let part = |name: &str| {
        header
            .value(name)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "{}.{}.{}",
        part("LINUX_VERSION_MAJOR"),
        part("LINUX_VERSION_PATCHLEVEL"),
        part("LINUX_VERSION_SUBLEVEL")
    )
}

/// Runs every check against one include directory and panics with the
/// full list of problems.
fn check_include_dir(include_dir: &Path, origin: &str) {
    let version = header_version(include_dir);
    let mut problems = Vec::new();
    match read_header(include_dir, "linux/io_uring.h") {
        Ok(text) => problems.extend(check_io_uring_header(&Header::parse(&text))),
        Err(e) => panic!(
            "{origin}: {e}. The decode tables are checked against this header; \
             install linux-libc-dev (or fix {NEWER_HEADERS_ENV})."
        ),
    }
    let errno_text = ["asm-generic/errno-base.h", "asm-generic/errno.h"]
        .iter()
        .map(|file| read_header(include_dir, file))
        .collect::<Result<Vec<_>, _>>();
    match errno_text {
        Ok(texts) => problems.extend(check_errno_headers(&Header::parse(&texts.join("\n")))),
        Err(e) => panic!("{origin}: {e}"),
    }
    assert!(
        problems.is_empty(),
        "{origin}: headers of Linux {version} in {} disagree with the decode tables:\n  {}",
        include_dir.display(),
        problems.join("\n  ")
    );
    eprintln!(
        "checked decode tables against Linux {version} headers in {}",
        include_dir.display()
    );
}

#[test]
fn installed_headers_match_tables() {
    check_include_dir(Path::new(INSTALLED_INCLUDE_DIR), "installed headers");
}

#[test]
fn newer_headers_match_tables() {
    let Some(dir) = std::env::var_os(NEWER_HEADERS_ENV) else {
        crate::test_skip::skip(
            "newer_headers_match_tables",
            &format!("{NEWER_HEADERS_ENV} not set, newer header not checked"),
        );
        return;
    };
    check_include_dir(&PathBuf::from(dir), NEWER_HEADERS_ENV);
}

// ---------------------------------------------------------------------------
// The reader itself.
// ---------------------------------------------------------------------------

const SAMPLE: &str = r"
/* a comment with #define FAKE 1 inside */
#define PLAIN		16
#define SHIFTED		(1U << 3)	/* trailing comment */
#define BARE		1U << 4
#define HEX		0x8000000ULL
#define OCTAL		040
#define CONTINUED	(1U << \
			 5)
#define FN_LIKE(x)	((x) + 1)
#define CAST		((__u32)1 << PLAIN)
#define SUM		(PLAIN + 1)
#define MASK		(SHIFTED | BARE)
#define ALIAS		PLAIN
// #define LINE_COMMENTED 3
enum sample_bits {
	A_BIT,
	B_BIT,
	C_BIT = 7,
	D_BIT,
};
#define FROM_BIT	(1U << D_BIT)
enum {
	X = 0,
	Y,
	Z = 1U << 31
};
struct s { enum sample_bits field; };
";

#[test]
fn reader_handles_the_forms_the_headers_use() {
    let h = Header::parse(SAMPLE);
    let v = |name: &str| h.value(name);
    assert_eq!(v("PLAIN"), Ok(16));
    assert_eq!(v("SHIFTED"), Ok(8));
    assert_eq!(v("BARE"), Ok(16));
    assert_eq!(v("HEX"), Ok(0x800_0000));
    assert_eq!(v("OCTAL"), Ok(32));
    assert_eq!(v("CONTINUED"), Ok(32));
    assert_eq!(v("CAST"), Ok(1 << 16));
    assert_eq!(v("SUM"), Ok(17));
    assert_eq!(v("MASK"), Ok(24));
    assert_eq!(v("ALIAS"), Ok(16));
    assert_eq!(v("A_BIT"), Ok(0));
    assert_eq!(v("B_BIT"), Ok(1));
    assert_eq!(v("C_BIT"), Ok(7));
    assert_eq!(v("D_BIT"), Ok(8));
    assert_eq!(v("FROM_BIT"), Ok(256));
    assert_eq!(v("Y"), Ok(1));
    assert_eq!(v("Z"), Ok(1 << 31));
    assert!(v("FAKE").is_err());
    assert!(v("LINE_COMMENTED").is_err());
    assert!(h.define("FN_LIKE").is_none());
    assert_eq!(
        h.enums.len(),
        2,
        "`enum sample_bits field;` is not an enum body"
    );
    assert_eq!(
        h.enum_containing("Y").map(|m| m.len()),
        Some(3),
        "members of the anonymous enum"
    );
    assert_eq!(resolve_alias(&h, "ALIAS", "PLAIN"), "PLAIN");
}

#[test]
fn check_reports_missing_and_wrong_names() {
    let header = Header::parse(
        "#define IORING_ENTER_GETEVENTS (1U << 0)\n\
         #define IORING_ENTER_SQ_WAKEUP (1U << 9)\n\
         #define IORING_ENTER_FUTURE (1U << 30)\n\
         enum { IORING_OP_NOP, IORING_OP_READV, IORING_OP_LAST };\n",
    );
    let problems = check_io_uring_header(&header);
    let mentions = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        mentions("IORING_ENTER_SQ_WAKEUP: header says 0x200"),
        "{problems:#?}"
    );
    assert!(
        mentions("IORING_ENTER_FUTURE = 0x40000000 is in the header but missing"),
        "{problems:#?}"
    );
    assert!(!mentions("IORING_ENTER_GETEVENTS"), "{problems:#?}");
    assert!(!mentions("IORING_OP_"), "{problems:#?}");
    // Groups the header lacks entirely are reported, not passed silently.
    assert!(
        mentions("no enum with IORING_REGISTER_BUFFERS"),
        "{problems:#?}"
    );
    assert!(
        mentions("IO_URING_SETUP_FLAGS: the header has none"),
        "{problems:#?}"
    );
}

#[test]
fn last_marker_must_follow_the_highest_member() {
    let header = Header::parse("enum { IORING_OP_NOP, IORING_OP_READV = 5, IORING_OP_LAST = 3 };");
    let members = header
        .enum_containing("IORING_OP_NOP")
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    assert!(check_last_marker(&members).is_some());
}
