//! ELF64 → raw arm64 Image: the loadable segments laid out from link address 0.

use std::path::Path;

const PT_LOAD: u32 = 1;

fn u16_at(b: &[u8], o: usize) -> Result<u16, String> {
    b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| "truncated ELF".into())
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, String> {
    b.get(o..o + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| "truncated ELF".into())
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, String> {
    b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| "truncated ELF".into())
}

/// Flattens the PT_LOAD segments of `elf` into a binary that starts at the
/// lowest segment's physical address (0 for the image, 0x4000_0000 for guests).
pub fn flatten(elf: &[u8]) -> Result<Vec<u8>, String> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err("not a little-endian ELF64 file".into());
    }
    let phoff = u64_at(elf, 0x20)? as usize;
    let phentsize = u16_at(elf, 0x36)? as usize;
    let phnum = u16_at(elf, 0x38)? as usize;
    let mut segments = vec![];
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != PT_LOAD {
            continue;
        }
        let offset = u64_at(elf, ph + 8)? as usize;
        let paddr = u64_at(elf, ph + 24)? as usize;
        let filesz = u64_at(elf, ph + 32)? as usize;
        if filesz != 0 {
            segments.push((offset, paddr, filesz));
        }
    }
    let base = segments.iter().map(|s| s.1).min().ok_or("ELF has no loadable data")?;
    let mut out = Vec::new();
    for (offset, paddr, filesz) in segments {
        let paddr = paddr - base;
        if paddr > 64 << 20 {
            return Err(format!("segments spread over {paddr:#x} bytes: not a flat image"));
        }
        let data = elf.get(offset..offset + filesz).ok_or("segment outside the ELF file")?;
        if out.len() < paddr + filesz {
            out.resize(paddr + filesz, 0);
        }
        out[paddr..paddr + filesz].copy_from_slice(data);
    }
    if out.is_empty() {
        return Err("ELF has no loadable data".into());
    }
    Ok(out)
}

/// The file offset of virtual address `addr` (inside a PT_LOAD segment's
/// file data).
pub fn file_offset(elf: &[u8], addr: u64) -> Result<usize, String> {
    let phoff = u64_at(elf, 0x20)? as usize;
    let phentsize = u16_at(elf, 0x36)? as usize;
    let phnum = u16_at(elf, 0x38)? as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != PT_LOAD {
            continue;
        }
        let offset = u64_at(elf, ph + 8)?;
        let vaddr = u64_at(elf, ph + 16)?;
        let filesz = u64_at(elf, ph + 32)?;
        if (vaddr..vaddr + filesz).contains(&addr) && addr + 4 <= vaddr + filesz {
            return Ok((offset + addr - vaddr) as usize);
        }
    }
    Err(format!("{addr:#x} is in no loadable segment"))
}

pub fn to_image(elf: &Path, image: &Path) -> Result<(), String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("read {}: {e}", elf.display()))?;
    let flat = flatten(&bytes)?;
    std::fs::write(image, flat).map_err(|e| format!("write {}: {e}", image.display()))
}
