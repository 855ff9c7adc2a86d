//! Turning kernel timestamps (CLOCK_MONOTONIC, from bpf_ktime_get_ns) into
//! wall-clock time for output.

use std::cell::Cell;

/// The offset between CLOCK_REALTIME and CLOCK_MONOTONIC, taken once at
/// start: later wall-clock steps (NTP) do not reorder events.
#[derive(Debug, Clone)]
pub struct WallClock {
    offset_ns: i128,
    /// The date and time of day of the last second formatted: events come
    /// hundreds of thousands a second, so nearly every one is in the same
    /// second as the one before, and only its microseconds are new.
    last_second: Cell<Option<Second>>,
}

/// A second since the epoch and its `YYYY-MM-DDTHH:MM:SS.` prefix.
#[derive(Debug, Clone, Copy)]
struct Second {
    secs: u64,
    prefix: [u8; PREFIX_LEN],
}

/// `YYYY-MM-DDTHH:MM:SS.`: the part of a timestamp of years 0 to 9999 that
/// changes once a second.
const PREFIX_LEN: usize = 20;

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl WallClock {
    pub fn now() -> Self {
        Self::with_offset(clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC))
    }

    fn with_offset(offset_ns: i128) -> Self {
        Self {
            offset_ns,
            last_second: Cell::new(None),
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self, monotonic_ns: u64) -> i128 {
        i128::from(monotonic_ns) + self.offset_ns
    }

    /// `2026-11-21T22:07:01.123456Z`.
    pub fn rfc3339(&self, monotonic_ns: u64) -> String {
        self.timestamp(monotonic_ns).as_str().to_string()
    }

    /// The same as [`Self::rfc3339`], without format! or an allocation:
    /// every event has one, and they were some 5% of the consumer's time.
    /// Within the second of the last call, only the microseconds are
    /// formatted, in 64-bit arithmetic (the 128-bit division of the full
    /// path was a symbol of its own in the consumer's profile).
    pub fn timestamp(&self, monotonic_ns: u64) -> Rfc3339 {
        let wall = i64::try_from(monotonic_ns)
            .ok()
            .zip(i64::try_from(self.offset_ns).ok())
            .and_then(|(mono, offset)| mono.checked_add(offset))
            .and_then(|ns| u64::try_from(ns).ok());
        let Some(ns) = wall else {
            return self.formatted(self.wall_ns(monotonic_ns));
        };
        let secs = ns / 1_000_000_000;
        let micros = (ns % 1_000_000_000 / 1000) as u32;
        let prefix = match self.last_second.get() {
            Some(last) if last.secs == secs => last.prefix,
            _ => {
                let full = self.formatted(i128::from(ns));
                let Some(prefix) = full.bytes.first_chunk::<PREFIX_LEN>().copied() else {
                    return full;
                };
                if usize::from(full.len) != PREFIX_LEN + 7 {
                    // A year past 9999: a longer date, not cached.
                    return full;
                }
                self.last_second.set(Some(Second { secs, prefix }));
                prefix
            }
        };
        let mut out = Rfc3339 {
            bytes: [0; RFC3339_MAX],
            len: 0,
        };
        out.bytes[..PREFIX_LEN].copy_from_slice(&prefix);
        let mut w = Digits {
            out: &mut out.bytes,
            at: PREFIX_LEN,
        };
        w.number(micros, 6);
        w.byte(b'Z');
        out.len = w.at as u8;
        out
    }

    /// The timestamp of `ns` since the epoch, formatted in full.
    fn formatted(&self, ns: i128) -> Rfc3339 {
        let secs = ns.div_euclid(1_000_000_000) as i64;
        let micros = (ns.rem_euclid(1_000_000_000) / 1000) as u32;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let mut out = Rfc3339 {
            bytes: [0; RFC3339_MAX],
            len: 0,
        };
        if !(0..=9999).contains(&y) {
            // Not a date this program will see; the slow path keeps the
            // format anyway.
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            );
            let n = text.len().min(RFC3339_MAX);
            out.bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
            out.len = n as u8;
            return out;
        }
        let mut w = Digits {
            out: &mut out.bytes,
            at: 0,
        };
        w.number(y as u32, 4);
        w.byte(b'-');
        w.number(m, 2);
        w.byte(b'-');
        w.number(d, 2);
        w.byte(b'T');
        w.number(sod / 3600, 2);
        w.byte(b':');
        w.number(sod / 60 % 60, 2);
        w.byte(b':');
        w.number(sod % 60, 2);
        w.byte(b'.');
        w.number(micros, 6);
        w.byte(b'Z');
        out.len = w.at as u8;
        out
    }

    /// Local `HH:MM:SS.uuuuuu`, as `strace -tt` prints.
    pub fn local_hms(&self, monotonic_ns: u64) -> String {
        let ns = self.wall_ns(monotonic_ns);
        // `as _`: time_t is i64 on every 64-bit target, but the libc crate
        // deprecates naming it on musl (its width is to change there).
        let secs = ns.div_euclid(1_000_000_000) as _;
        let micros = ns.rem_euclid(1_000_000_000) / 1000;
        // SAFETY: localtime_r with valid pointers; tm is plain data.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&secs, &mut tm) };
        format!(
            "{:02}:{:02}:{:02}.{micros:06}",
            tm.tm_hour, tm.tm_min, tm.tm_sec
        )
    }
}

/// Room for a timestamp of any year `{y:04}` prints (i64: up to 20 bytes).
const RFC3339_MAX: usize = 48;

/// An RFC 3339 timestamp, kept on the stack.
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    bytes: [u8; RFC3339_MAX],
    len: u8,
}

impl Rfc3339 {
    /// ASCII only: the same bytes as [`Self::as_str`], without its UTF-8
    /// check.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written, or a prefix
        // of format!'s ASCII output.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Fixed-width decimal fields written into a buffer.
struct Digits<'a> {
    out: &'a mut [u8; RFC3339_MAX],
    at: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.out.get_mut(self.at) {
            *slot = b;
            self.at += 1;
        }
    }

    /// `value` zero-padded to `width` digits (callers keep it in range).
    fn number(&mut self, mut value: u32, width: usize) {
        let end = self.at + width;
        for i in (self.at..end).rev() {
            if let Some(slot) = self.out.get_mut(i) {
                *slot = b'0' + (value % 10) as u8;
            }
            value /= 10;
        }
        self.at = end.min(RFC3339_MAX);
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2026-11-21
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn rfc3339_of_epoch() {
        let c = WallClock::with_offset(0);
        assert_eq!(c.rfc3339(1_500_000), "1970-01-01T00:00:00.001500Z");
    }

    #[test]
    fn timestamp_matches_the_formatted_one() {
        fn formatted(ns: i128) -> String {
            let secs = ns.div_euclid(1_000_000_000) as i64;
            let micros = ns.rem_euclid(1_000_000_000) / 1000;
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            )
        }
        for offset_ns in [
            0,
            1_795_312_496_209_062_743,
            -5_000_000_000,
            253_402_300_799_999_999_000,
            253_402_300_800_000_000_000,
            -62_167_219_200_000_000_001,
        ] {
            let c = WallClock::with_offset(offset_ns);
            // Out of order and within one second, so that the cached
            // second is both reused and replaced.
            for mono in [
                0,
                999,
                1_000,
                86_399_999_999_999,
                999_999_999,
                12_345_678_901_234,
                12_345_000_000_000,
                12_345_999_999_999,
                12_346_000_000_000,
                u64::MAX,
                i64::MAX as u64,
                0,
            ] {
                assert_eq!(
                    c.timestamp(mono).as_str(),
                    formatted(i128::from(mono) + offset_ns),
                    "{offset_ns} {mono}"
                );
            }
        }
    }
}
