//! Verification of fjall's journal files before fjall replays them.
//!
//! fjall 3 (pinned by Cargo.lock) writes each batch as `Start(count, seqno)`, `count` item or
//! clear entries, and `End(xxh3-64 of the entries' bytes, magic "FJL\x03")`, and preallocates
//! each journal file with zeros. On recovery it replays batches in order and:
//! * fails to open on a *complete* batch whose checksum does not match (or whose entry count is
//!   wrong) — corruption is reported, but without the file or the offset;
//! * silently truncates the file at the last intact batch on anything it cannot decode (a bad
//!   entry tag, a bad trailer, a length running past the end, a batch without its end marker).
//!   That is right for a torn tail after a crash, and wrong for damage in the middle of a
//!   journal: every batch after the damage, acknowledged and durable, would be dropped.
//!
//! [`check_journals`] walks every journal the same way before fjall sees it and decides:
//! * **torn tail** (accepted, fjall truncates it): nothing after the last intact batch holds an
//!   intact end marker (`0x03`, 8 checksum bytes, the magic), so no batch written after the
//!   damaged one could have been completed, let alone acknowledged;
//! * **damage** (an error naming the file and the offset of the batch): an unreadable batch
//!   followed by any intact end marker, or a complete batch whose checksum does not match.
//!
//! Not covered: the `seqno` of a `Start` entry is outside fjall's checksum; a damaged seqno
//! goes unnoticed by fjall and by this check.

use std::path::{Path, PathBuf};

use crate::{Result, StorageError};

const TAG_START: u8 = 1;
const TAG_ITEM: u8 = 2;
const TAG_END: u8 = 3;
const TAG_CLEAR: u8 = 4;
const MAGIC: &[u8; 4] = b"FJL\x03";
/// Bytes of an end marker: tag, checksum, magic.
const END_LEN: usize = 1 + 8 + MAGIC.len();

/// Damage found in a journal file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalDamage {
    /// The journal file.
    pub file: PathBuf,
    /// Offset of the first damaged batch.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for JournalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal {} is damaged at offset {}: {}",
            self.file.display(),
            self.offset,
            self.what
        )
    }
}

/// The journal files (`<n>.jnl`) of a fjall directory, oldest first.
pub(crate) fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let id = e.file_name().to_str()?.strip_suffix(".jnl")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// Checks every journal of the fjall directory `dir` (see the module docs); the first damage
/// found is a [`StorageError::Corrupt`] naming the file and the offset.
pub(crate) fn check_journals(dir: &Path) -> Result<()> {
    for file in journal_files(dir) {
        let bytes = std::fs::read(&file)?;
        if let Some((offset, what)) = check_journal(&bytes) {
            let damage = JournalDamage { file, offset, what };
            tracing::error!(file = %damage.file.display(), offset, "{damage}");
            return Err(StorageError::Corrupt(damage.to_string()));
        }
    }
    Ok(())
}

/// How one batch at a position reads.
enum Batch {
    /// Intact; the next batch starts at this offset.
    Intact(usize),
    /// Complete and well-formed but its checksum does not match.
    BadChecksum,
    /// Cannot be decoded (a torn write or damaged structure).
    Unreadable(&'static str),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let out = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
}

fn read_batch(bytes: &[u8], start: usize) -> Batch {
    let mut c = Cursor { bytes, pos: start };
    if c.u8() != Some(TAG_START) {
        return Batch::Unreadable("no batch start marker");
    }
    let (Some(count), Some(_seqno)) = (c.u32(), c.u64()) else {
        return Batch::Unreadable("batch start marker cut short");
    };
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for _ in 0..count {
        let entry_start = c.pos;
        match c.u8() {
            Some(TAG_ITEM) => {
                // value type, compression, keyspace id, key length, value length, stored length
                let Some(head) = c.take(1 + 1 + 8) else {
                    return Batch::Unreadable("item cut short");
                };
                if !matches!(head[0], 0 | 1 | 2 | 4) || head[1] > 1 {
                    return Batch::Unreadable("item with an unknown value type or compression");
                }
                let (Some(key_len), Some(_value_len), Some(stored_len)) =
                    (c.u16(), c.u32(), c.u32())
                else {
                    return Batch::Unreadable("item cut short");
                };
                if c.take(usize::from(key_len)).is_none() || c.take(stored_len as usize).is_none() {
                    return Batch::Unreadable("item runs past the end of the file");
                }
            }
            Some(TAG_CLEAR) => {
                if c.u64().is_none() {
                    return Batch::Unreadable("clear marker cut short");
                }
            }
            Some(TAG_END) => return Batch::Unreadable("batch shorter than its count"),
            _ => return Batch::Unreadable("unknown entry tag"),
        }
        hasher.update(&bytes[entry_start..c.pos]);
    }
    if c.u8() != Some(TAG_END) {
        return Batch::Unreadable("batch without its end marker");
    }
    let (Some(expected), Some(magic)) = (c.u64(), c.take(MAGIC.len())) else {
        return Batch::Unreadable("end marker cut short");
    };
    if magic != MAGIC {
        return Batch::Unreadable("end marker with a bad trailer");
    }
    if hasher.digest() != expected {
        return Batch::BadChecksum;
    }
    Batch::Intact(c.pos)
}

/// Offset of the first intact end marker at or after `from`.
fn next_end_marker(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    tail.windows(END_LEN)
        .position(|w| w[0] == TAG_END && &w[9..] == MAGIC)
        .map(|p| from + p)
}

/// The first damage in one journal's bytes, as (offset, description); `None` when every batch
/// is intact or only a torn tail follows the last intact one.
pub(crate) fn check_journal(bytes: &[u8]) -> Option<(u64, String)> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        match read_batch(bytes, pos) {
            Batch::Intact(next) => pos = next,
            Batch::BadChecksum => {
                return Some((pos as u64, "batch checksum mismatch".into()));
            }
            Batch::Unreadable(why) => {
                // Zeros or a partly written batch are a torn tail unless a completed batch
                // follows. Starting one byte on skips nothing: an end marker is 13 bytes.
                return next_end_marker(bytes, pos + 1).map(|end| {
                    (
                        pos as u64,
                        format!("{why}, and an intact batch end follows at offset {end}"),
                    )
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch as fjall writes it (no compression).
    fn batch(seqno: u64, items: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = vec![TAG_START];
        out.extend_from_slice(&(items.len() as u32).to_le_bytes());
        out.extend_from_slice(&seqno.to_le_bytes());
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (k, v) in items {
            let mut e = vec![TAG_ITEM, 0, 0];
            e.extend_from_slice(&7u64.to_le_bytes());
            e.extend_from_slice(&(k.len() as u16).to_le_bytes());
            e.extend_from_slice(&(v.len() as u32).to_le_bytes());
            e.extend_from_slice(&(v.len() as u32).to_le_bytes());
            e.extend_from_slice(k);
            e.extend_from_slice(v);
            hasher.update(&e);
            out.extend_from_slice(&e);
        }
        out.push(TAG_END);
        out.extend_from_slice(&hasher.digest().to_le_bytes());
        out.extend_from_slice(MAGIC);
        out
    }

    fn journal(batches: usize, zeros: usize) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut starts = Vec::new();
        for i in 0..batches {
            starts.push(out.len());
            out.extend(batch(i as u64 + 1, &[(b"key", b"value"), (b"k2", b"v2")]));
        }
        out.extend(std::iter::repeat_n(0u8, zeros));
        (out, starts)
    }

    #[test]
    fn intact_journals_and_torn_tails_pass() {
        let (j, _) = journal(5, 1000);
        assert_eq!(check_journal(&j), None);
        let (j, _) = journal(5, 0);
        assert_eq!(check_journal(&j), None);
        assert_eq!(check_journal(&[]), None);
        // Torn tail: the last batch cut anywhere, then zeros.
        let (full, starts) = journal(3, 0);
        for cut in starts[2] + 1..full.len() {
            let mut j = full[..cut].to_vec();
            j.extend(std::iter::repeat_n(0u8, 64));
            assert_eq!(check_journal(&j), None, "cut at {cut}");
        }
    }

    #[test]
    fn damage_before_intact_batches_is_found_with_its_offset() {
        let (j, starts) = journal(4, 100);
        // A flipped entry tag in batch 1: fjall would truncate batches 1..4 silently.
        let mut bad = j.clone();
        bad[starts[1] + 13] ^= 0xff;
        let (offset, what) = check_journal(&bad).unwrap();
        assert_eq!(offset, starts[1] as u64, "{what}");
        // A flipped value byte: a checksum mismatch (fjall fails too, without the offset).
        let mut bad = j.clone();
        bad[starts[2] + 38] ^= 0x01; // a byte of the first value
        assert_eq!(
            check_journal(&bad),
            Some((starts[2] as u64, "batch checksum mismatch".into()))
        );
        // A damaged key length in the last batch, whose end marker is intact.
        let mut bad = j;
        bad[starts[3] + 24] ^= 0x40;
        assert_eq!(check_journal(&bad).map(|d| d.0), Some(starts[3] as u64));
    }

    #[test]
    fn every_single_bit_flip_is_found_or_a_torn_tail() {
        let (j, starts) = journal(3, 32);
        let last = starts[2];
        // The seqno of a start marker (bytes 5..13 of a batch) is outside fjall's checksum.
        let seqno = |i: usize| starts.iter().any(|s| (s + 5..s + 13).contains(&i));
        for i in (0..last).filter(|&i| !seqno(i)) {
            for bit in 0..8 {
                let mut bad = j.clone();
                bad[i] ^= 1 << bit;
                // Before the last batch, every flip is reported (an intact batch follows).
                assert!(check_journal(&bad).is_some(), "byte {i} bit {bit}");
            }
        }
    }
}
