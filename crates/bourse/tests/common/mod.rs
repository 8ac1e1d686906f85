//! What the tests of the shipped files (`deploy.rs`, `monitoring.rs`) share.

use std::path::PathBuf;

/// The repository's root. Read at run time: a build cache filled from another checkout keeps
/// that checkout's path in `env!`.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../..")
}
