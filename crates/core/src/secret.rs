//! [`Secret`]: a credential (a key, a password, a node's RPC password, a wallet passphrase) that
//! never shows in `Debug` output or logs. Shared by the server's configuration and the wallet.

use serde::Deserialize;

/// A secret string: redacted in `Debug`; read only through [`Secret::expose`].
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
