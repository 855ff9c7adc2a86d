//! Table types shared by every decode table: bit flags and enumerations.

/// A table of single-bit flags, rendered the way strace renders flag words.
///
/// Entries are kept in ascending bit order so that `names` can walk the
/// table once and still emit names in bit order (the tests of each table
/// check the order).
#[derive(Debug, Clone, Copy)]
pub struct FlagSet {
    entries: &'static [(u64, &'static str)],
}

impl FlagSet {
    /// Wraps a table of `(bit value, name)` pairs in ascending bit order.
    pub const fn new(entries: &'static [(u64, &'static str)]) -> Self {
        Self { entries }
    }

    /// The `(bit value, name)` pairs, in ascending bit order.
    pub const fn entries(&self) -> &'static [(u64, &'static str)] {
        self.entries
    }

    /// Every bit the table has a name for.
    pub fn known_bits(&self) -> u64 {
        self.entries.iter().fold(0, |acc, &(bit, _)| acc | bit)
    }

    /// The value of the flag called `name`, if the table has it.
    pub fn value_of(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(bit, _)| bit)
    }

    /// Names of the set bits in bit order, then whatever bits are left
    /// unnamed as one hex number (e.g. `"0x100000"`).
    pub fn names(&self, bits: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = bits;
        for &(bit, name) in self.entries {
            if bit != 0 && bits & bit == bit {
                out.push(name.to_string());
                rest &= !bit;
            }
        }
        if rest != 0 {
            out.push(format!("{rest:#x}"));
        }
        out
    }

    /// The same names as [`Self::names`], serialized as a JSON array
    /// without building a string per name (the hot path of every event).
    pub fn name_list(&self, bits: u64) -> FlagNames {
        FlagNames { set: *self, bits }
    }

    /// The set bits joined with `|`, or `"0"` when no bit is set.
    pub fn render(&self, bits: u64) -> String {
        if bits == 0 {
            return "0".to_string();
        }
        self.names(bits).join("|")
    }
}

/// [`FlagSet::names`] of some bits, for serde: an array of the names.
#[derive(Debug, Clone, Copy)]
pub struct FlagNames {
    set: FlagSet,
    bits: u64,
}

impl FlagNames {
    /// No names at all: an empty array.
    pub const EMPTY: Self = Self {
        set: FlagSet::new(&[]),
        bits: 0,
    };
}

impl FlagNames {
    /// No bit set: no names (most flag words of most events).
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// The names of the set bits the table knows, in bit order.
    pub fn known(&self) -> impl Iterator<Item = &'static str> {
        let bits = self.bits;
        self.set
            .entries
            .iter()
            .filter(move |&&(bit, _)| bit != 0 && bits & bit == bit)
            .map(|&(_, name)| name)
    }

    /// The set bits the table has no name for (written as one hex number
    /// after the names).
    pub fn unknown(&self) -> u64 {
        let bits = self.bits;
        self.set
            .entries
            .iter()
            .filter(|&&(bit, _)| bit != 0 && bits & bit == bit)
            .fold(bits, |rest, &(bit, _)| rest & !bit)
    }
}

impl serde::Serialize for FlagNames {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let mut seq = serializer.serialize_seq(None)?;
        for name in self.known() {
            seq.serialize_element(name)?;
        }
        let rest = self.unknown();
        if rest != 0 {
            seq.serialize_element(&format!("{rest:#x}"))?;
        }
        seq.end()
    }
}

/// A table of enumeration values (opcodes, errno numbers, signals).
#[derive(Debug, Clone, Copy)]
pub struct ValueNames {
    entries: &'static [(u64, &'static str)],
}

impl ValueNames {
    /// Wraps a table of `(value, name)` pairs in ascending value order.
    pub const fn new(entries: &'static [(u64, &'static str)]) -> Self {
        Self { entries }
    }

    /// The `(value, name)` pairs, in ascending value order.
    pub const fn entries(&self) -> &'static [(u64, &'static str)] {
        self.entries
    }

    /// The name of `value`, if the table has one.
    pub fn name(&self, value: u64) -> Option<&'static str> {
        // Opcode tables are dense from 0, so the value usually is its own
        // index; the scan covers sparse tables such as errno numbers.
        if let Some(&(v, name)) = usize::try_from(value)
            .ok()
            .and_then(|i| self.entries.get(i))
            && v == value
        {
            return Some(name);
        }
        self.entries
            .iter()
            .find(|&&(v, _)| v == value)
            .map(|&(_, name)| name)
    }

    /// The value called `name`, if the table has it.
    pub fn value_of(&self, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(v, _)| v)
    }

    /// The name of `value`, or the value in decimal when it has none.
    pub fn render(&self, value: u64) -> String {
        match self.name(value) {
            Some(name) => name.to_string(),
            None => value.to_string(),
        }
    }
}

/// Test helpers that every table module uses to check its own shape.
#[cfg(test)]
pub(crate) mod shape {
    use super::{FlagSet, ValueNames};
    use std::collections::HashSet;

    /// Every entry is one bit, bits ascend strictly, names are unique.
    pub(crate) fn assert_single_bits_ascending(set: &FlagSet) {
        let mut prev = 0u64;
        let mut names = HashSet::new();
        for &(bit, name) in set.entries() {
            assert!(bit.is_power_of_two(), "{name} = {bit:#x} is not one bit");
            assert!(bit > prev, "{name} = {bit:#x} is out of bit order");
            assert!(names.insert(name), "{name} appears twice");
            prev = bit;
        }
    }

    /// Values ascend strictly (so no value has two names), names are unique.
    pub(crate) fn assert_values_ascending(table: &ValueNames) {
        let mut names = HashSet::new();
        for pair in table.entries().windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} = {} does not come after {} = {}",
                pair[1].1,
                pair[1].0,
                pair[0].1,
                pair[0].0
            );
        }
        for &(_, name) in table.entries() {
            assert!(names.insert(name), "{name} appears twice");
        }
    }

    /// Values run 0, 1, 2, ... without gaps, as kernel enums without
    /// explicit values do.
    pub(crate) fn assert_dense_from_zero(table: &ValueNames) {
        for (i, &(v, name)) in table.entries().iter().enumerate() {
            assert_eq!(v, i as u64, "{name} should be {i}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLOURS: FlagSet = FlagSet::new(&[(1 << 0, "RED"), (1 << 1, "GREEN"), (1 << 4, "BLUE")]);
    const ANIMALS: ValueNames = ValueNames::new(&[(0, "CAT"), (1, "DOG"), (7, "EMU")]);

    #[test]
    fn name_list_serializes_like_names() {
        for bits in [0, 1, 3, 0x10, 0x13, 0x10_0008, 1 << 63, u64::MAX] {
            assert_eq!(
                serde_json::to_string(&COLOURS.name_list(bits)).unwrap(),
                serde_json::to_string(&COLOURS.names(bits)).unwrap(),
                "{bits:#x}"
            );
        }
        assert_eq!(serde_json::to_string(&FlagNames::EMPTY).unwrap(), "[]");
    }

    #[test]
    fn zero_renders_as_0() {
        assert_eq!(COLOURS.render(0), "0");
        assert!(COLOURS.names(0).is_empty());
    }

    #[test]
    fn known_bits_in_bit_order() {
        assert_eq!(COLOURS.names(0b1_0011), ["RED", "GREEN", "BLUE"]);
        assert_eq!(COLOURS.render(0b1_0001), "RED|BLUE");
    }

    #[test]
    fn unknown_bits_become_one_hex_remainder() {
        assert_eq!(COLOURS.names(0x10_0000), ["0x100000"]);
        assert_eq!(COLOURS.render(0x10_0000 | 0x8 | 0x2), "GREEN|0x100008");
        assert_eq!(COLOURS.render(1 << 63), "0x8000000000000000");
    }

    #[test]
    fn flag_lookups() {
        assert_eq!(COLOURS.known_bits(), 0b1_0011);
        assert_eq!(COLOURS.value_of("BLUE"), Some(16));
        assert_eq!(COLOURS.value_of("PINK"), None);
        shape::assert_single_bits_ascending(&COLOURS);
    }

    #[test]
    fn value_names() {
        assert_eq!(ANIMALS.name(1), Some("DOG"));
        assert_eq!(ANIMALS.name(7), Some("EMU"));
        assert_eq!(ANIMALS.name(2), None);
        assert_eq!(ANIMALS.render(7), "EMU");
        assert_eq!(ANIMALS.render(42), "42");
        assert_eq!(ANIMALS.render(u64::MAX), u64::MAX.to_string());
        assert_eq!(ANIMALS.value_of("EMU"), Some(7));
        shape::assert_values_ascending(&ANIMALS);
    }
}
