//! The link key and the handshake's proofs. Both ends derive the key from the exchange's
//! `secret_key`, so a split deployment has no second secret to distribute.

use blake3::Hash;

/// The key both ends of a link hold. Never printed.
#[derive(Clone)]
pub struct LinkKey([u8; 32]);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
}

/// Random bytes each end contributes to a connection.
pub(crate) type Nonce = [u8; 32];

impl LinkKey {
    /// The link key of an exchange whose `secret_key` (decoded) is `secret`.
    pub fn derive(secret: &[u8]) -> LinkKey {
        LinkKey(blake3::derive_key("bourse 2026-12 engine link key v1", secret))
    }

    fn tag(&self, label: &[u8], client: &Nonce, server: &Nonce) -> Hash {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(label).update(client).update(server);
        h.finalize()
    }

    /// What the server shows to prove it holds the key.
    pub(crate) fn server_proof(&self, client: &Nonce, server: &Nonce) -> Hash {
        self.tag(b"server proof", client, server)
    }

    /// What the client shows to prove it holds the key.
    pub(crate) fn client_proof(&self, client: &Nonce, server: &Nonce) -> Hash {
        self.tag(b"client proof", client, server)
    }

    /// The key that tags this connection's frames.
    pub(crate) fn session(&self, client: &Nonce, server: &Nonce) -> [u8; 32] {
        *self.tag(b"session", client, server).as_bytes()
    }
}

pub(crate) fn nonce() -> std::io::Result<Nonce> {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_proofs_and_sessions_differ_by_secret_role_and_nonces() {
        let a = LinkKey::derive(b"one secret");
        let b = LinkKey::derive(b"another secret");
        let (c, s) = ([1u8; 32], [2u8; 32]);
        assert_eq!(a.server_proof(&c, &s), LinkKey::derive(b"one secret").server_proof(&c, &s));
        assert_ne!(a.server_proof(&c, &s), b.server_proof(&c, &s));
        assert_ne!(a.server_proof(&c, &s), a.client_proof(&c, &s));
        assert_ne!(a.session(&c, &s), a.session(&s, &c));
        assert_eq!(format!("{a:?}"), "LinkKey(…)");
    }
}
