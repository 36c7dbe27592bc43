//! ELF symbol lookup for the profile.

use crate::Error;
use object::{Object, ObjectSymbol, SymbolKind};
use std::path::Path;

/// Function symbols sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymbolTable {
    /// (start, end exclusive, name).
    entries: Vec<(u64, u64, String)>,
}

/// A Rust symbol without its mangling and hash (`spevisor_host::hyp::call`);
/// other names unchanged.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

impl SymbolTable {
    /// Builds a table from (address, size, name); a zero size extends to
    /// the next symbol.
    pub fn from_symbols(mut syms: Vec<(u64, u64, String)>) -> Self {
        syms.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        syms.dedup_by_key(|s| s.0);
        let mut entries = Vec::with_capacity(syms.len());
        for (i, (addr, size, name)) in syms.iter().enumerate() {
            let end = if *size != 0 {
                addr.saturating_add(*size)
            } else {
                syms.get(i + 1).map_or(addr.saturating_add(1), |n| n.0)
            };
            entries.push((*addr, end, name.clone()));
        }
        Self { entries }
    }

    /// Reads the symbol tables (static and dynamic) of an ELF file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let data =
            std::fs::read(path).map_err(|source| Error::Io { what: format!("reading {}", path.display()), source })?;
        Self::from_elf_bytes(&data).map_err(|e| Error::Elf(format!("{}: not a usable ELF file: {e}", path.display())))
    }

    /// Parses an ELF image from memory.
    pub fn from_elf_bytes(data: &[u8]) -> Result<Self, object::Error> {
        let file = object::File::parse(data)?;
        let syms = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), demangle(s.name().ok()?))))
            .filter(|(_, _, n)| !n.is_empty())
            .collect();
        Ok(Self::from_symbols(syms))
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no symbol.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Name of the symbol containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.entries.partition_point(|e| e.0 <= addr).checked_sub(1)?;
        let (start, end, name) = &self.entries[i];
        (addr >= *start && addr < *end).then_some(name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_range() {
        let t = SymbolTable::from_symbols(vec![
            (0x2000, 0, "b".into()),
            (0x1000, 0x10, "a".into()),
            (0x3000, 0x8, "c".into()),
        ]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0x1000), Some("a"));
        assert_eq!(t.lookup(0x100f), Some("a"));
        assert_eq!(t.lookup(0x1010), None);
        assert_eq!(t.lookup(0x2fff), Some("b"));
        assert_eq!(t.lookup(0x3007), Some("c"));
        assert_eq!(t.lookup(0x3008), None);
        assert_eq!(t.lookup(0xfff), None);
        assert!(SymbolTable::from_elf_bytes(b"not an elf").is_err());
    }
}
