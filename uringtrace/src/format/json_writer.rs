//! The NDJSON serializer: the output of serde_json's compact serializer
//! with its escapes plus the terminal-safe ones (see [`write_str`]), byte
//! for byte (the tests compare the two), written straight into the line
//! buffer.
//!
//! serde_json was half of the consumer's time: it scans every string a
//! byte at a time through a table and hands the escape-free runs to the
//! formatter, which scanned them again for the escapes it adds; keys (some
//! thirty per event, flattened structs are maps) go the same way. Here one
//! pass looks at each byte once, and a run without escapes is one copy.

use std::fmt::{self, Display};

use serde::{
    Serialize,
    ser::{self, Serializer},
};

/// Why a value could not be written (a map key that is not a string or a
/// number, a custom Serialize impl's own error). Our records never fail.
#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Appends `value` as compact JSON to `out`. On an error, what was written
/// before it stays in `out` (as with serde_json).
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `s` as a JSON string: serde_json's escapes (`"`, `\\`, the C0 controls,
/// with its short forms), and also DEL, the C1 controls (U+0080..U+009F:
/// U+009B is a CSI to some terminals) and the Unicode line and paragraph
/// separators (line breaks to some tools), so that `tail -f` of a trace
/// cannot be steered by a traced process's name.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let clean = plain_prefix(bytes);
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    put(out, &bytes[..clean]);
    if clean < bytes.len() {
        write_escaping(out, s, clean);
    }
    out.push(b'"');
}

/// `"key":` for a struct field. Field names are this program's own
/// identifiers (or its serde renames), never escaped: copied without the
/// scan of [`write_str`], which was the consumer's largest symbol in a
/// profile of a NOP storm (22%; its records are mostly keys).
fn write_field_name(out: &mut Vec<u8>, key: &'static str) {
    debug_assert_eq!(plain_prefix(key.as_bytes()), key.len(), "{key}");
    out.reserve(key.len() + 3);
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `s` as a JSON string without the escape scan of [`write_str`]: for
/// this program's own names (events, opcodes, flags, errnos), which are
/// plain ASCII.
pub fn write_name(out: &mut Vec<u8>, s: &'static str) {
    debug_assert_eq!(plain_prefix(s.as_bytes()), s.len(), "{s}");
    out.reserve(s.len() + 2);
    out.push(b'"');
    put(out, s.as_bytes());
    out.push(b'"');
}

/// How many leading bytes need no escape: printable ASCII but `"` and
/// `\\`. Eight bytes at a time (keys and values are mostly plain).
fn plain_prefix(bytes: &[u8]) -> usize {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // Each test is nonzero iff some byte matches (the classic
        // zero-byte test; borrows only reach bytes above a match).
        let below_space = x.wrapping_sub(LOW * 0x20) & !x & HIGH;
        let quote = {
            let v = x ^ (LOW * u64::from(b'"'));
            v.wrapping_sub(LOW) & !v & HIGH
        };
        let backslash = {
            let v = x ^ (LOW * u64::from(b'\\'));
            v.wrapping_sub(LOW) & !v & HIGH
        };
        // 0x7f and up: the high bit, or all seven low bits set.
        let del_or_high = (((x & !HIGH) + LOW) | x) & HIGH;
        if below_space | quote | backslash | del_or_high != 0 {
            break;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if !plain(b) {
            break;
        }
        i += 1;
    }
    i
}

fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// Appends `src`; copies of up to 32 bytes (keys, numbers, names, the
/// time) without a call to memcpy, which cost more than the copy.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    if n > 32 {
        out.extend_from_slice(src);
        return;
    }
    out.reserve(32);
    // SAFETY: 32 bytes of spare capacity reserved; reads stay within
    // `src` (two possibly overlapping words of a slice at least that
    // long); the length grows by exactly the bytes written.
    unsafe {
        let dst = out.as_mut_ptr().add(out.len());
        let p = src.as_ptr();
        if n >= 16 {
            copy_ends::<u128>(p, dst, n);
        } else if n >= 8 {
            copy_ends::<u64>(p, dst, n);
        } else if n >= 4 {
            copy_ends::<u32>(p, dst, n);
        } else if n >= 2 {
            copy_ends::<u16>(p, dst, n);
        } else if n == 1 {
            *dst = *p;
        }
        out.set_len(out.len() + n);
    }
}

/// Copies `n` bytes, `size_of::<T>() <= n <= 2 * size_of::<T>()`, as the
/// first and the last word (overlapping in the middle).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_ends<T: Copy>(src: *const u8, dst: *mut u8, n: usize) {
    let w = size_of::<T>();
    // SAFETY: both words lie within the `n` bytes (the caller's bounds).
    unsafe {
        let a = std::ptr::read_unaligned(src.cast::<T>());
        let b = std::ptr::read_unaligned(src.add(n - w).cast::<T>());
        std::ptr::write_unaligned(dst.cast::<T>(), a);
        std::ptr::write_unaligned(dst.add(n - w).cast::<T>(), b);
    }
}

/// The rest of `s` from `from` (a character boundary), escaping.
fn write_escaping(out: &mut Vec<u8>, s: &str, from: usize) {
    let bytes = s.as_bytes();
    let mut start = from;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if plain(b) {
            i += 1;
            continue;
        }
        if b >= 0x80 {
            // i is at a character boundary: ASCII steps by one, the rest
            // by their length.
            let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            let len = c.len_utf8();
            if matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}') {
                out.extend_from_slice(&bytes[start..i]);
                unicode_escape(out, u32::from(c));
                start = i + len;
            }
            i += len;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => unicode_escape(out, u32::from(b)),
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `\uXXXX`, lowercase, as serde_json writes it.
fn unicode_escape(out: &mut Vec<u8>, c: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(c >> 12 & 0xf) as usize],
        HEX[(c >> 8 & 0xf) as usize],
        HEX[(c >> 4 & 0xf) as usize],
        HEX[(c & 0xf) as usize],
    ]);
}

/// "00" to "99".
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Most numbers in a record are small (fds, flags, zeros): one byte,
/// inlined, without the call and register saves of the general case.
#[inline(always)]
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
    } else {
        write_u64_digits(out, n);
    }
}

/// Ten and more: the digits written in place at the end of the line
/// (no copy from a stack buffer), eight at a time in 32-bit halves that
/// do not depend on each other. A nanosecond timestamp is 14 digits: the
/// loop of 64-bit divisions by 100 this replaces was seven multiplies in
/// one chain, and the consumer's largest symbol.
#[inline(never)]
fn write_u64_digits(out: &mut Vec<u8>, n: u64) {
    let len = decimal_len(n);
    out.reserve(20);
    // SAFETY: 20 bytes (the most a u64 takes) of spare capacity reserved;
    // `fill_digits` writes exactly the `len` bytes before `end`, all of
    // them after the current length, which then grows by `len`.
    unsafe {
        let start = out.as_mut_ptr().add(out.len());
        fill_digits(start.add(len), n);
        out.set_len(out.len() + len);
    }
}

/// How many decimal digits `n` has: estimated from its bit length
/// (log10(2) ~ 1233 / 4096), then corrected by one comparison.
#[inline(always)]
fn decimal_len(n: u64) -> usize {
    const POW10: [u64; 20] = {
        let mut p = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            p[i] = p[i - 1] * 10;
            i += 1;
        }
        p
    };
    let bits = 64 - (n | 1).leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    (guess + usize::from(n >= POW10[guess])).max(1)
}

/// Writes the decimal digits of `n` into the bytes just before `end`.
///
/// # Safety
/// The `decimal_len(n)` bytes before `end` must be writable.
#[inline(always)]
unsafe fn fill_digits(mut end: *mut u8, mut n: u64) {
    // SAFETY: each write is below `end` and at or after
    // `end - decimal_len(n)` (the caller's bound): every step writes only
    // digits that n still has.
    unsafe {
        while n >= 100_000_000 {
            let low = (n % 100_000_000) as u32;
            n /= 100_000_000;
            end = end.sub(8);
            write_eight(end, low);
        }
        let mut n = n as u32;
        while n >= 100 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            end = end.sub(2);
            std::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(pair), end, 2);
        }
        if n >= 10 {
            end = end.sub(2);
            std::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(n as usize * 2), end, 2);
        } else {
            end = end.sub(1);
            *end = b'0' + n as u8;
        }
    }
}

/// Exactly eight digits of `n < 10^8`, leading zeros included, at `dst`.
///
/// # Safety
/// Eight bytes at `dst` writable.
#[inline(always)]
unsafe fn write_eight(dst: *mut u8, n: u32) {
    let (high, low) = (n / 10_000, n % 10_000);
    let pairs = [high / 100, high % 100, low / 100, low % 100];
    // SAFETY: PAIRS has 200 bytes and each pair index is below 100; the
    // eight bytes at dst are the caller's.
    unsafe {
        for (i, p) in pairs.into_iter().enumerate() {
            std::ptr::copy_nonoverlapping(PAIRS.as_ptr().add(p as usize * 2), dst.add(2 * i), 2);
        }
    }
}

pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Where a sequence or map is: nothing written yet, or after an element;
/// `Empty` when it was opened and closed at once (a known length of 0).
#[derive(PartialEq, Eq)]
enum State {
    Empty,
    First,
    Rest,
}

pub struct Compound<'a, 'b> {
    ser: &'b mut Writer<'a>,
    state: State,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if self.state != State::First {
            self.ser.out.push(b',');
        }
        self.state = State::Rest;
    }

    /// Writes `end` unless already closed, then `after` (a variant's `}`).
    fn close(self, end: &[u8], after: &[u8]) {
        if self.state != State::Empty {
            self.ser.out.extend_from_slice(end);
        }
        self.ser.out.extend_from_slice(after);
    }
}

impl<'a, 'b> Writer<'a> {
    fn open(&'b mut self, open: u8, close: u8, len: Option<usize>) -> Compound<'a, 'b> {
        self.out.push(open);
        let state = if len == Some(0) {
            self.out.push(close);
            State::Empty
        } else {
            State::First
        };
        Compound { ser: self, state }
    }

    /// `{"variant":` before a variant's content.
    fn variant_key(&mut self, variant: &str) {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
    }
}

impl<'a, 'b> Serializer for &'b mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        write_i64(self.out, i64::from(v));
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        write_i64(self.out, i64::from(v));
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        write_i64(self.out, i64::from(v));
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        write_i64(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        write_u64(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        write_u64(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        write_u64(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        write_u64(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.out.extend_from_slice(v.to_string().as_bytes());
        Ok(())
    }
    // Floats (stats records only) exactly as serde_json writes them,
    // non-finite ones as null included.
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(ser::Error::custom)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(ser::Error::custom)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq as _;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b'[', b']', len))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.variant_key(variant);
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'b>, Error> {
        Ok(self.open(b'{', b'}', len))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, 'b>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>, Error> {
        self.variant_key(variant);
        self.serialize_map(Some(len))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b"]", b"");
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b"]", b"}");
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(MapKey {
            out: &mut *self.ser.out,
        })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.ser.out.push(b':');
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b"}", b"");
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.comma();
        write_field_name(self.ser.out, key);
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeMap::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.close(b"}", b"}");
        Ok(())
    }
}

/// A map key: a string, or a number or bool written as one (serde_json's
/// rules); anything else is an error.
struct MapKey<'a> {
    out: &'a mut Vec<u8>,
}

impl MapKey<'_> {
    fn quoted(self, text: impl Display) -> Result<(), Error> {
        self.out.push(b'"');
        use std::io::Write as _;
        write!(self.out, "{text}").map_err(ser::Error::custom)?;
        self.out.push(b'"');
        Ok(())
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".to_string())
}

impl Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.quoted(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, collections::BTreeMap};

    use serde::Serialize;

    use super::*;
    use crate::format::ndjson::reference_json;

    fn same<T: Serialize>(value: &T) {
        let mut ours = Vec::new();
        write(value, &mut ours).expect("serializes");
        let theirs = reference_json(value);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[derive(Serialize)]
    struct Inner<'a> {
        a: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<Option<i32>>,
        c: Cow<'a, str>,
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Untagged {
        Nothing {},
        Some { x: u64, names: Vec<&'static str> },
    }

    #[derive(Serialize)]
    enum Tagged {
        Unit,
        New(i64),
        Tuple(u8, bool),
        Fields { y: i16 },
        EmptyFields {},
    }

    #[derive(Serialize)]
    struct Outer<'a> {
        schema: u32,
        #[serde(flatten)]
        inner: Inner<'a>,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        maybe: Option<Inner<'a>>,
        #[serde(flatten)]
        untagged: Untagged,
        tagged: Vec<Tagged>,
        empty: Vec<String>,
        floats: [f64; 5],
        ints: (i8, i64, u64, i128, u128),
        map: BTreeMap<String, u64>,
        int_keys: BTreeMap<u32, bool>,
        unit: (),
        ch: char,
    }

    fn outer(text: &str) -> Outer<'_> {
        Outer {
            schema: 1,
            inner: Inner {
                a: Some(255),
                b: Some(None),
                c: Cow::Borrowed(text),
            },
            maybe: Some(Inner {
                a: None,
                b: None,
                c: Cow::Owned(text.chars().rev().collect()),
            }),
            untagged: Untagged::Nothing {},
            tagged: vec![
                Tagged::Unit,
                Tagged::New(-7),
                Tagged::Tuple(1, false),
                Tagged::Fields { y: -300 },
                Tagged::EmptyFields {},
            ],
            empty: Vec::new(),
            floats: [0.1, 1.5, -2e300, f64::NAN, 0.0],
            ints: (i8::MIN, i64::MIN, u64::MAX, i128::MIN, u128::MAX),
            map: [("k\\\"ey".to_string(), 1), (String::new(), 0)].into(),
            int_keys: [(0, true), (4_000_000_000, false)].into(),
            unit: (),
            ch: '\u{9b}',
        }
    }

    #[test]
    fn matches_serde_json_with_the_terminal_safe_escapes() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let unicode: String = ('\u{7e}'..='\u{a1}')
            .chain('\u{2026}'..='\u{202a}')
            .chain(['é', '€', '😀', '\u{feff}', '\u{202e}'])
            .collect();
        for text in [
            "",
            "plain",
            &every_ascii,
            &unicode,
            "a\n\"\\\u{1b}[31m\u{7f}x\u{9b}y\u{2028}",
        ] {
            same(&outer(text));
            same(&text);
        }
        same(&Untagged::Some {
            x: 3,
            names: vec!["A", "B"],
        });
        same(&Untagged::Nothing {});
        same(&Vec::<u8>::new());
        same(&serde_bytes_like());
    }

    fn serde_bytes_like() -> Vec<Option<Vec<u16>>> {
        vec![None, Some(vec![]), Some(vec![1, 65535])]
    }

    #[test]
    fn plain_prefix_stops_at_the_first_byte_to_escape() {
        for special in [0u8, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xc2, 0xff] {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 24];
                bytes[at] = special;
                assert_eq!(plain_prefix(&bytes), at, "{special:#x} at {at}");
            }
        }
        assert_eq!(plain_prefix(b" ~!#[]{}0123456789abcdefXYZ"), 27);
        assert_eq!(plain_prefix(b""), 0);
    }

    #[test]
    fn numbers_and_short_copies() {
        for n in [0, 1, 9, 10, 99, 100, 101, 12345, u64::MAX, u64::MAX / 7] {
            let mut out = b"x".to_vec();
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes());
        }
        // Every digit count, at its edges, and 8-digit groups with zeros.
        let mut edges = vec![0, u64::MAX, 1_000_000_000_000_000_001];
        for k in 1..20 {
            let p = 10u64.pow(k);
            edges.extend([p - 1, p, p + 1, p.saturating_mul(5) - 7]);
        }
        edges.extend([
            10u64.pow(19) + 1,
            36_499_386_990_748,
            100_000_000_000_000_123,
        ]);
        for n in edges {
            let mut out = b"x".to_vec();
            write_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes(), "{n}");
            assert_eq!(decimal_len(n), n.to_string().len(), "{n}");
        }
        for len in 0..70 {
            let src: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut out = b"pre".to_vec();
            put(&mut out, &src);
            assert_eq!(&out[3..], &src[..]);
            assert_eq!(out.len(), 3 + len);
        }
    }

    #[test]
    fn a_key_that_is_not_a_string_is_an_error() {
        let map: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(write(&map, &mut Vec::new()).is_err());
    }
}
