//! Backups of a running exchange, and their restore.
//!
//! A backup is one consistent point of everything a restore needs: the journal up to a seq
//! `S`, a snapshot of the engine's state at `S`, and the database as it was at the instant the
//! engine stood at `S`. [`create`] gets that point by pausing the engine for a few
//! milliseconds (every command before is durable, none after is applied) while the database
//! fixes a read snapshot (SQLite: a read transaction; PostgreSQL: an exported snapshot that
//! `pg_dump` uses); then the engine goes on and the files are written from the fixed views.
//! The state at `S` is rebuilt from the copied journal (from the newest live snapshot before
//! it), off the engine thread, so the pause does not grow with the state.
//! The result is exactly what a crash at that instant would have left on disk, which every
//! part of bourse already recovers from (deposits are keyed, withdrawals are marked before
//! they are sent, read models carry their cursor).
//!
//! Each backup is a directory (or an S3 key prefix) named `bourse-<UTC time>-s<seq>` holding
//! `journal/`, `snapshots/`, `database.sqlite` or `database.pgdump`, and `manifest.json`
//! (written last: a backup without one is incomplete and ignored), which lists the seq, the
//! state hash and every file's size and BLAKE3 checksum. [`restore`] checks every checksum,
//! copies the files into an empty data directory, replays the whole journal from scratch and
//! refuses unless the state hash is the manifest's, then restores the database.
//!
//! This crate never changes a balance; it reads the engine's state through
//! `EngineHandle::pause` and the store through `Store::backup_begin`.

mod create;
mod dest;
mod error;
mod manifest;
mod name;
mod restore;
mod retention;
mod s3;
mod sigv4;

pub use create::{Created, Live, create};
pub use dest::{Destination, Located};
pub use error::BackupError;
pub use manifest::{FileEntry, MANIFEST, Manifest};
pub use name::{backup_name, parse_backup_name};
pub use restore::{Restored, restore, verify};
pub use retention::Retention;
pub use s3::{PART_BYTES, S3, S3Settings};
