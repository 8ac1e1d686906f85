//! EIP-1559 (type 2) transactions: the fields, the signature, the raw bytes a node takes with
//! `eth_sendRawTransaction`, and the hash the node will know the transaction by.
//!
//! Signing is pure (no I/O, no clock, deterministic RFC 6979 nonces): the same transaction and
//! key give the same bytes and hash, so a wallet can record the hash before it sends.

use crate::hash::{TxHash, keccak256};
use crate::keys::{Address, SigningKey, address_of, address_of_verifying};
use crate::rlp::{self, Item, RlpError};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};

/// EIP-2718 type byte of an EIP-1559 transaction.
pub const TYPE_EIP1559: u8 = 0x02;

/// Gas of a plain transfer to an account without code.
pub const TRANSFER_GAS: u64 = 21_000;

/// An unsigned EIP-1559 transaction to an address (contract creation is not a thing the
/// wallet does, so `to` is always there). The access list is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eip1559Tx {
    /// EIP-155 chain id: 1 for mainnet; a signature for one chain is refused on another.
    pub chain_id: u64,
    /// The sender's next nonce: one transaction per nonce is ever mined.
    pub nonce: u64,
    /// The tip per gas to the block's producer, in wei.
    pub max_priority_fee_per_gas_wei: u128,
    /// The most the sender pays per gas (base fee plus tip), in wei.
    pub max_fee_per_gas_wei: u128,
    /// The most gas the transaction may use ([`TRANSFER_GAS`] for a plain transfer).
    pub gas_limit: u64,
    /// The recipient.
    pub to: Address,
    /// What the recipient receives, in wei.
    pub value_wei: u128,
    /// Call data; empty for a plain transfer.
    pub data: Vec<u8>,
}

/// A signed transaction, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// `0x02 || rlp([fields..., y_parity, r, s])`: what `eth_sendRawTransaction` takes.
    pub raw: Vec<u8>,
    /// Keccak-256 of `raw`: the id the node and block explorers give the transaction.
    pub hash: TxHash,
    /// The signer, recovered from the signature.
    pub from: Address,
}

impl std::fmt::Debug for SignedTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedTx")
            .field("hash", &self.hash)
            .field("from", &self.from)
            .field("raw_bytes", &self.raw.len())
            .finish()
    }
}

/// A transaction that cannot be signed, or raw bytes that are not a signed EIP-1559
/// transaction.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The tip is over the fee cap: every node refuses that.
    #[error("the priority fee {priority_wei} is over the max fee {max_wei} per gas")]
    PriorityFeeOverMaxFee {
        /// `max_priority_fee_per_gas_wei`.
        priority_wei: u128,
        /// `max_fee_per_gas_wei`.
        max_wei: u128,
    },
    /// The signature's R point had an x over the curve order, which Ethereum's 1-bit y parity
    /// cannot say (about 1 chance in 2^127).
    #[error("the signature cannot be written with a y parity")]
    Unrepresentable,
    /// Raw bytes that are not type 2.
    #[error("not an EIP-1559 (type 2) transaction")]
    NotEip1559,
    /// The RLP is broken or is not the shape of a signed EIP-1559 transaction.
    #[error(transparent)]
    Rlp(#[from] RlpError),
    /// A signature that is not valid, or high-s (refused since EIP-2).
    #[error("invalid signature")]
    Signature,
}

impl Eip1559Tx {
    /// The fields as the payload of an RLP list (without the list's header), with an empty
    /// access list.
    fn fields(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.data.len());
        rlp::put_uint(&mut out, u128::from(self.chain_id));
        rlp::put_uint(&mut out, u128::from(self.nonce));
        rlp::put_uint(&mut out, self.max_priority_fee_per_gas_wei);
        rlp::put_uint(&mut out, self.max_fee_per_gas_wei);
        rlp::put_uint(&mut out, u128::from(self.gas_limit));
        rlp::put_bytes(&mut out, self.to.as_bytes());
        rlp::put_uint(&mut out, self.value_wei);
        rlp::put_bytes(&mut out, &self.data);
        rlp::put_list(&mut out, &[]);
        out
    }

    /// What is signed: `keccak256(0x02 || rlp([chain_id, nonce, max_priority_fee_per_gas,
    /// max_fee_per_gas, gas_limit, to, value, data, access_list]))`.
    pub fn signing_hash(&self) -> [u8; 32] {
        let mut payload = vec![TYPE_EIP1559];
        rlp::put_list(&mut payload, &self.fields());
        keccak256(&payload)
    }

    /// The most the sender can be charged: `value + gas_limit * max_fee_per_gas`; `None` on
    /// overflow (no account holds that much).
    pub fn max_cost_wei(&self) -> Option<u128> {
        u128::from(self.gas_limit)
            .checked_mul(self.max_fee_per_gas_wei)?
            .checked_add(self.value_wei)
    }

    /// Signs with `key` (RFC 6979, low-s): the raw transaction and its hash.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedTx, TxError> {
        if self.max_priority_fee_per_gas_wei > self.max_fee_per_gas_wei {
            return Err(TxError::PriorityFeeOverMaxFee {
                priority_wei: self.max_priority_fee_per_gas_wei,
                max_wei: self.max_fee_per_gas_wei,
            });
        }
        let (signature, recovery) = key.sign_prehash_recoverable(&self.signing_hash());
        // k256 normalises s to the lower half and flips the parity with it (EIP-2); a
        // high-s signature here would be a bug in that, and nodes would refuse it.
        if signature.normalize_s() != signature {
            return Err(TxError::Signature);
        }
        if recovery.is_x_reduced() {
            return Err(TxError::Unrepresentable);
        }
        let (r, s) = signature.split_bytes();
        let mut fields = self.fields();
        rlp::put_uint(&mut fields, u128::from(recovery.is_y_odd()));
        rlp::put_bytes(&mut fields, rlp::strip_zeros(&r));
        rlp::put_bytes(&mut fields, rlp::strip_zeros(&s));
        let mut raw = Vec::with_capacity(fields.len() + 4);
        raw.push(TYPE_EIP1559);
        rlp::put_list(&mut raw, &fields);
        Ok(SignedTx { hash: TxHash(keccak256(&raw)), raw, from: address_of(key) })
    }

    /// Reads a signed EIP-1559 transaction (with an empty access list, to an address): the
    /// transaction and its signer. Refuses any encoding but the canonical one, and high-s
    /// signatures, so `decode(raw).sign(key).raw == raw` for the signer's key.
    pub fn decode_signed(raw: &[u8]) -> Result<(Eip1559Tx, SignedTx), TxError> {
        let (&kind, body) = raw.split_first().ok_or(TxError::NotEip1559)?;
        if kind != TYPE_EIP1559 {
            return Err(TxError::NotEip1559);
        }
        let item = rlp::decode(body)?;
        let [
            chain_id,
            nonce,
            priority,
            max_fee,
            gas_limit,
            to,
            value,
            data,
            access_list,
            y_parity,
            r,
            s,
        ] = item.list("transaction")?
        else {
            return Err(RlpError::Shape("a signed EIP-1559 transaction has 12 fields").into());
        };
        let to: [u8; 20] = to.bytes("to")?.try_into().map_err(|_| RlpError::Shape("to"))?;
        if !access_list.list("access list")?.is_empty() {
            return Err(RlpError::Shape("access list").into());
        }
        let tx = Eip1559Tx {
            chain_id: uint_u64(chain_id, "chain id")?,
            nonce: uint_u64(nonce, "nonce")?,
            max_priority_fee_per_gas_wei: priority.uint("max priority fee", 16)?,
            max_fee_per_gas_wei: max_fee.uint("max fee", 16)?,
            gas_limit: uint_u64(gas_limit, "gas limit")?,
            to: Address(to),
            value_wei: value.uint("value", 16)?,
            data: data.bytes("data")?.to_vec(),
        };
        let y_odd = match y_parity.uint("y parity", 1)? {
            0 => false,
            1 => true,
            _ => return Err(RlpError::Integer("y parity").into()),
        };
        let signature = Signature::from_scalars(scalar(r, "r")?, scalar(s, "s")?)
            .map_err(|_| TxError::Signature)?;
        if signature.normalize_s() != signature {
            return Err(TxError::Signature);
        }
        let signer = VerifyingKey::recover_from_prehash(
            &tx.signing_hash(),
            &signature,
            RecoveryId::new(y_odd, false),
        )
        .map_err(|_| TxError::Signature)?;
        let signed = SignedTx {
            raw: raw.to_vec(),
            hash: TxHash(keccak256(raw)),
            from: address_of_verifying(&signer),
        };
        Ok((tx, signed))
    }
}

fn uint_u64(item: &Item<'_>, what: &'static str) -> Result<u64, RlpError> {
    u64::try_from(item.uint(what, 8)?).map_err(|_| RlpError::Integer(what))
}

/// A signature scalar: at most 32 bytes without leading zeros, left-padded to 32.
fn scalar(item: &Item<'_>, what: &'static str) -> Result<[u8; 32], RlpError> {
    let bytes = item.bytes(what)?;
    if bytes.first() == Some(&0) || bytes.len() > 32 {
        return Err(RlpError::Integer(what));
    }
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().skip(32 - bytes.len()).zip(bytes) {
        *o = *b;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::keys::Seed;

    fn key(index: u32) -> SigningKey {
        Seed::from_phrase("test test test test test test test test test test test junk", "")
            .unwrap()
            .derive(index)
            .unwrap()
    }

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    struct Vector {
        key: u32,
        tx: Eip1559Tx,
        raw: &'static str,
        hash: &'static str,
    }

    // Made by an independent implementation, Foundry's `cast mktx` 1.7.1 (offline, with
    // anvil's dev keys), and hashed with `cast keccak`. RFC 6979 makes signatures
    // deterministic, so ours must be byte for byte the same.
    fn vectors() -> Vec<Vector> {
        let usdt = address("0xdAC17F958D2ee523a2206206994597C13D831ec7");
        let transfer_data = hex::decode(
            "a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8\
             00000000000000000000000000000000000000000000000000000000004c4b40",
        )
        .unwrap();
        vec![
            // y parity 0.
            Vector {
                key: 1,
                tx: Eip1559Tx {
                    chain_id: 1,
                    nonce: 7,
                    max_priority_fee_per_gas_wei: 1_500_000_000,
                    max_fee_per_gas_wei: 30_000_000_000,
                    gas_limit: 21_000,
                    to: address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
                    value_wei: 1_234_567_890_123_456_789,
                    data: vec![],
                },
                raw: "02f87301078459682f008506fc23ac00825208943c44cdddb6a900fa2b585dd299e03d12fa4293bc88112210f47de9811580c080a0215b16745991e4f5ab1dec9b5e8019bdf4008093fd798f043ed6de0cc63f88d3a01c3e85c77e5b7a7a3a13add9459f5159a6069a3cc1aaca64245c9115bd833a24",
                hash: "0x58c943f1ca75ed1f02d0813f1d8de85e8021097f0b468ff6fa591b94b276e877",
            },
            // Call data, chain 31337, y parity 1.
            Vector {
                key: 0,
                tx: Eip1559Tx {
                    chain_id: 31337,
                    nonce: 0,
                    max_priority_fee_per_gas_wei: 1_000_000_000,
                    max_fee_per_gas_wei: 2_000_000_000,
                    gas_limit: 60_000,
                    to: usdt,
                    value_wei: 0,
                    data: transfer_data,
                },
                raw: "02f8b1827a6980843b9aca00847735940082ea6094dac17f958d2ee523a2206206994597c13d831ec780b844a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c800000000000000000000000000000000000000000000000000000000004c4b40c001a0a5cc9da1c058f9905e1b7a685975843af85f8f124e9ceabb75b1d23ef82fffa0a04ae2979eeedf831733b5b7ca38fc057982c462bdd781f09f785d7c3c31a9f016",
                hash: "0x461fb182b31abc311f92d1545f817376e678879d3b0e9b90a7dd27729b405ad2",
            },
            // An r of 31 bytes: its leading zero byte is not written.
            Vector {
                key: 0,
                tx: Eip1559Tx {
                    chain_id: 1,
                    nonce: 324,
                    max_priority_fee_per_gas_wei: 2_000_000_000,
                    max_fee_per_gas_wei: 20_000_000_000,
                    gas_limit: 21_000,
                    to: address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
                    value_wei: 1_000_000_000_000_000_000,
                    data: vec![],
                },
                raw: "02f8740182014484773594008504a817c8008252089470997970c51812dc3a010c7d01b50e0d17dc79c8880de0b6b3a764000080c0019f3dda6a23be4effcfc7305abc5a3433fc0a6b44d1bff4f175e763197232dcada059e13f31f0792153a43e1e6647922ecfcadfeebf0954cf77440c609dd8273ec3",
                hash: "0x887cdd4c3d06bbc9920f7c75da7f5372849a26bcb9e12a253cdbf019d04f1a76",
            },
        ]
    }

    #[test]
    fn signs_as_foundry_does() {
        for v in vectors() {
            let key = key(v.key);
            let signed = v.tx.sign(&key).unwrap();
            assert_eq!(hex::encode(&signed.raw), v.raw);
            assert_eq!(signed.hash.to_string(), v.hash);
            assert_eq!(signed.from, address_of(&key));
        }
    }

    #[test]
    fn decodes_and_recovers_the_signer() {
        for v in vectors() {
            let raw = hex::decode(v.raw).unwrap();
            let (tx, signed) = Eip1559Tx::decode_signed(&raw).unwrap();
            assert_eq!(tx, v.tx);
            assert_eq!(signed.from, address_of(&key(v.key)));
            assert_eq!(signed.hash.to_string(), v.hash);
            assert_eq!(signed.raw, raw);
        }
        // Our own signatures, over many nonces: the signer recovers, s is low, and the
        // encoding is minimal (a leading zero of r or s is dropped about 1 time in 128).
        let key = key(5);
        for nonce in 0..300 {
            let tx = Eip1559Tx { nonce, ..vectors()[0].tx.clone() };
            let signed = tx.sign(&key).unwrap();
            let (back, again) = Eip1559Tx::decode_signed(&signed.raw).unwrap();
            assert_eq!((back, again), (tx, signed));
        }
    }

    #[test]
    fn decoder_refuses_what_is_not_a_signed_transaction() {
        let raw = hex::decode(vectors()[0].raw).unwrap();
        assert_eq!(Eip1559Tx::decode_signed(&[]), Err(TxError::NotEip1559));
        let mut legacy = raw.clone();
        legacy[0] = 0x01;
        assert_eq!(Eip1559Tx::decode_signed(&legacy), Err(TxError::NotEip1559));
        for end in 1..raw.len() {
            assert!(Eip1559Tx::decode_signed(&raw[..end]).is_err(), "prefix of {end} bytes");
        }
        // A flipped bit in the value changes the signer, not the validity of the RLP.
        let mut tampered = raw.clone();
        tampered[45] ^= 1;
        match Eip1559Tx::decode_signed(&tampered) {
            Ok((_, signed)) => assert_ne!(signed.from, address_of(&key(1))),
            Err(e) => assert_eq!(e, TxError::Signature),
        }
        // The high-s twin of a valid signature (s' = n - s) is refused.
        let (tx, _) = Eip1559Tx::decode_signed(&raw).unwrap();
        let (sig, recid) = key(1).sign_prehash_recoverable(&tx.signing_hash());
        let high = Signature::from_scalars(sig.r().to_bytes(), (-*sig.s()).to_bytes()).unwrap();
        let mut fields = tx.fields();
        rlp::put_uint(&mut fields, u128::from(!recid.is_y_odd()));
        rlp::put_bytes(&mut fields, rlp::strip_zeros(&high.r().to_bytes()));
        rlp::put_bytes(&mut fields, rlp::strip_zeros(&high.s().to_bytes()));
        let mut high_raw = vec![TYPE_EIP1559];
        rlp::put_list(&mut high_raw, &fields);
        assert_eq!(Eip1559Tx::decode_signed(&high_raw), Err(TxError::Signature));
    }

    #[test]
    fn refuses_a_tip_over_the_fee_cap() {
        let tx =
            Eip1559Tx { max_priority_fee_per_gas_wei: 31_000_000_000, ..vectors()[0].tx.clone() };
        assert!(matches!(tx.sign(&key(0)), Err(TxError::PriorityFeeOverMaxFee { .. })));
    }

    #[test]
    fn max_cost_is_checked() {
        let tx = vectors()[0].tx.clone();
        assert_eq!(tx.max_cost_wei(), Some(1_234_567_890_123_456_789 + 21_000 * 30_000_000_000));
        let huge = Eip1559Tx { max_fee_per_gas_wei: u128::MAX, ..tx };
        assert_eq!(huge.max_cost_wei(), None);
    }
}
