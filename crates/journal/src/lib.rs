//! Durable storage for the matching engine: the append-only command journal, snapshot files
//! and the data-directory lock. Payloads are opaque bytes; this crate never interprets them.
//!
//! # Journal format
//!
//! A journal directory holds segment files named by the seq of their first record, e.g.
//! `00000000000000000001.wal`. All integers are little-endian.
//!
//! Segment header, 32 bytes: magic `BRSJRNL\0`, format version `u32`, payload limit `u32`,
//! first seq `u64`, chain-in `u32`, crc32c of the preceding 28 bytes `u32`.
//!
//! Record: payload length `u32`, seq `u64`, checksum `u32`, then the payload. The checksum
//! is `crc32c(prev || seq || length || payload)`, where `prev` is the previous record's
//! checksum: the segment's chain-in for its first record, 0 at the start of the journal. Seqs
//! are consecutive across segments and each chain-in equals the previous segment's last
//! checksum, so a missing, reordered or spliced record or segment fails verification. A
//! length above the segment's payload limit or beyond the end of the file is an invalid
//! record; nothing is allocated from an unchecked length.
//!
//! # Torn tail or corruption
//!
//! A crash can leave the last segment ending in a partial, garbage or zero-filled record.
//! When recovery meets an invalid record at offset X of the last segment, it looks at every
//! offset after X for a record that still verifies with a seq beyond the last good one
//! (chaining from the last good record, or from another candidate record just before it in
//! seq). If one exists, valid data follows the damage: that is corruption and opening fails.
//! Otherwise it is a torn tail: the file is truncated to X and synced. An invalid record in
//! any other segment is always corruption. A last segment with no valid record (being created
//! at the crash) is removed.
//!
//! # Snapshot format
//!
//! `snap-<seq:020>.bin`: a 36-byte header (magic `BRSSNAP\0`, version `u32`, seq `u64`,
//! payload length `u64`, payload crc32c `u32`, crc32c of the preceding 32 bytes `u32`), then
//! the payload.

mod copy;
mod durable;
mod error;
mod format;
mod journal;
mod lock;
mod reader;
mod segment;
mod snapshot;

pub use copy::copy_prefix;
pub use error::JournalError;
pub use format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use journal::{FileJournal, Journal, JournalOptions, Recovery};
pub use lock::DataDirLock;
pub use reader::JournalReader;
pub use snapshot::{SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, SnapshotStore};
