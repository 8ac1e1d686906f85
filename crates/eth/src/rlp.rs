//! Recursive Length Prefix, the encoding Ethereum signs and sends transactions in: just what a
//! transaction needs (byte strings, unsigned integers, lists), written for this crate.
//!
//! The decoder takes only canonical encodings (the one encoding each value has): anything a
//! node or a stored row holds can be read back without a panic, and a re-encoding is the same
//! bytes.

/// Appends `bytes` as an RLP string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes {
        [b] if *b < 0x80 => out.push(*b),
        _ => {
            put_header(out, 0x80, bytes.len());
            out.extend_from_slice(bytes);
        }
    }
}

/// Appends an unsigned integer: its big-endian bytes without leading zeros (zero is the empty
/// string).
pub(crate) fn put_uint(out: &mut Vec<u8>, value: u128) {
    let bytes = value.to_be_bytes();
    put_bytes(out, strip_zeros(&bytes));
}

/// Appends a list whose items are already encoded in `payload`.
pub(crate) fn put_list(out: &mut Vec<u8>, payload: &[u8]) {
    put_header(out, 0xc0, payload.len());
    out.extend_from_slice(payload);
}

/// `bytes` without its leading zero bytes.
pub(crate) fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn put_header(out: &mut Vec<u8>, offset: u8, len: usize) {
    // A length under 56 is in the prefix byte; a longer one follows it, big-endian.
    match u8::try_from(len) {
        Ok(short) if short < 56 => out.push(offset + short),
        _ => {
            let len_bytes = (len as u64).to_be_bytes();
            let len_bytes = strip_zeros(&len_bytes);
            // At most 8 bytes of length: the prefix stays within its range.
            out.push(offset + 55 + len_bytes.len() as u8);
            out.extend_from_slice(len_bytes);
        }
    }
}

/// An encoding that is not canonical RLP, or not the shape expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RlpError {
    /// The input ends inside an item.
    #[error("RLP: the input ends inside an item")]
    Truncated,
    /// Bytes are left after the item.
    #[error("RLP: bytes after the item")]
    Trailing,
    /// An item has another encoding that is the canonical one.
    #[error("RLP: not the canonical encoding")]
    NotCanonical,
    /// Lists nest deeper than any transaction does.
    #[error("RLP: lists nest too deep")]
    TooDeep,
    /// A list where a string was expected or the other way round, or the wrong item count.
    #[error("RLP: unexpected shape: {0}")]
    Shape(&'static str),
    /// An integer with leading zeros or too many bytes.
    #[error("RLP: bad integer: {0}")]
    Integer(&'static str),
}

/// One decoded item, borrowing from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    Bytes(&'a [u8]),
    List(Vec<Item<'a>>),
}

impl<'a> Item<'a> {
    pub(crate) fn bytes(&self, what: &'static str) -> Result<&'a [u8], RlpError> {
        match self {
            Item::Bytes(b) => Ok(b),
            Item::List(_) => Err(RlpError::Shape(what)),
        }
    }

    pub(crate) fn list(&self, what: &'static str) -> Result<&[Item<'a>], RlpError> {
        match self {
            Item::List(items) => Ok(items),
            Item::Bytes(_) => Err(RlpError::Shape(what)),
        }
    }

    /// An unsigned integer of at most `bytes_max` bytes, without leading zeros.
    pub(crate) fn uint(&self, what: &'static str, bytes_max: usize) -> Result<u128, RlpError> {
        let bytes = self.bytes(what)?;
        if bytes.first() == Some(&0) {
            return Err(RlpError::Integer(what));
        }
        if bytes.len() > bytes_max.min(16) {
            return Err(RlpError::Integer(what));
        }
        Ok(bytes.iter().fold(0u128, |v, b| (v << 8) | u128::from(*b)))
    }
}

/// Transactions nest lists two deep (the access list's entries and their storage keys).
const DEPTH_MAX: usize = 8;

/// Decodes the one item that `input` is exactly.
pub(crate) fn decode(input: &[u8]) -> Result<Item<'_>, RlpError> {
    let (item, rest) = decode_one(input, 0)?;
    if !rest.is_empty() {
        return Err(RlpError::Trailing);
    }
    Ok(item)
}

fn decode_one(input: &[u8], depth: usize) -> Result<(Item<'_>, &[u8]), RlpError> {
    let (&prefix, rest) = input.split_first().ok_or(RlpError::Truncated)?;
    match prefix {
        0x00..=0x7f => Ok((Item::Bytes(input.get(..1).ok_or(RlpError::Truncated)?), rest)),
        0x80..=0xbf => {
            let (payload, rest) = payload(prefix - 0x80, rest)?;
            if let [b] = payload
                && *b < 0x80
            {
                return Err(RlpError::NotCanonical);
            }
            Ok((Item::Bytes(payload), rest))
        }
        0xc0..=0xff => {
            if depth >= DEPTH_MAX {
                return Err(RlpError::TooDeep);
            }
            let (mut payload, rest) = payload(prefix - 0xc0, rest)?;
            let mut items = Vec::new();
            while !payload.is_empty() {
                let (item, after) = decode_one(payload, depth + 1)?;
                items.push(item);
                payload = after;
            }
            Ok((Item::List(items), rest))
        }
    }
}

/// Splits the payload that a prefix (less its range's offset) announces off `input`.
fn payload(code: u8, input: &[u8]) -> Result<(&[u8], &[u8]), RlpError> {
    let len = if code < 56 {
        usize::from(code)
    } else {
        let len_of_len = usize::from(code - 55);
        let len_bytes = input.get(..len_of_len).ok_or(RlpError::Truncated)?;
        if len_bytes.first() == Some(&0) || len_of_len > 8 {
            return Err(RlpError::NotCanonical);
        }
        let len = len_bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        if len < 56 {
            return Err(RlpError::NotCanonical);
        }
        let len = usize::try_from(len).map_err(|_| RlpError::Truncated)?;
        return split(input.get(len_of_len..).ok_or(RlpError::Truncated)?, len);
    };
    split(input, len)
}

fn split(input: &[u8], len: usize) -> Result<(&[u8], &[u8]), RlpError> {
    if input.len() < len {
        return Err(RlpError::Truncated);
    }
    Ok(input.split_at(len))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, b);
        out
    }

    fn uint(v: u128) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, v);
        out
    }

    // The examples of the RLP specification (Ethereum's Yellow Paper, appendix B, and the
    // RLP page of ethereum.org).
    #[test]
    fn spec_examples() {
        assert_eq!(bytes(b"dog"), [0x83, b'd', b'o', b'g']);
        assert_eq!(bytes(b""), [0x80]);
        assert_eq!(bytes(&[0x00]), [0x00]);
        assert_eq!(bytes(&[0x0f]), [0x0f]);
        assert_eq!(bytes(&[0x80]), [0x81, 0x80]);
        assert_eq!(uint(0), [0x80]);
        assert_eq!(uint(15), [0x0f]);
        assert_eq!(uint(1024), [0x82, 0x04, 0x00]);
        let mut list = Vec::new();
        put_list(&mut list, &[bytes(b"cat"), bytes(b"dog")].concat());
        assert_eq!(list, [0xc8, 0x83, b'c', b'a', b't', 0x83, b'd', b'o', b'g']);
        let mut empty = Vec::new();
        put_list(&mut empty, &[]);
        assert_eq!(empty, [0xc0]);
        let lorem = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit";
        assert_eq!(lorem.len(), 56);
        assert_eq!(bytes(lorem), [&[0xb8, 56][..], lorem].concat());
        // The set-theoretic representation of three: [ [], [[]], [ [], [[]] ] ].
        let three = [0xc7, 0xc0, 0xc1, 0xc0, 0xc3, 0xc0, 0xc1, 0xc0];
        let e = Item::List(vec![]);
        let one = Item::List(vec![e.clone()]);
        assert_eq!(
            decode(&three).unwrap(),
            Item::List(vec![e.clone(), one.clone(), Item::List(vec![e, one])])
        );
    }

    #[test]
    fn long_lengths_round_trip() {
        for len in [55usize, 56, 255, 256, 65_536] {
            let payload = vec![0xab; len];
            let encoded = bytes(&payload);
            assert_eq!(decode(&encoded).unwrap(), Item::Bytes(&payload));
            let mut list = Vec::new();
            put_list(&mut list, &encoded);
            assert_eq!(decode(&list).unwrap(), Item::List(vec![Item::Bytes(&payload)]));
        }
    }

    #[test]
    fn decoder_refuses_what_is_not_canonical() {
        assert_eq!(decode(&[]), Err(RlpError::Truncated));
        assert_eq!(decode(&[0x83, b'd', b'o']), Err(RlpError::Truncated));
        assert_eq!(decode(&[0x0f, 0x0f]), Err(RlpError::Trailing));
        // One byte under 0x80 wrapped in a string header.
        assert_eq!(decode(&[0x81, 0x05]), Err(RlpError::NotCanonical));
        // A short length in the long form, and a length with a leading zero.
        assert_eq!(decode(&[0xb8, 0x03, 1, 2, 3]), Err(RlpError::NotCanonical));
        assert_eq!(decode(&[0xb9, 0x00, 0x38]), Err(RlpError::NotCanonical));
        // A length far past the input.
        assert_eq!(
            decode(&[0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(RlpError::Truncated)
        );
        assert_eq!(decode(&[0xc2, 0x83]), Err(RlpError::Truncated));
        let mut nested = vec![0xc0];
        for _ in 0..DEPTH_MAX {
            let mut wrapped = Vec::new();
            put_list(&mut wrapped, &nested);
            nested = wrapped;
        }
        assert_eq!(decode(&nested), Err(RlpError::TooDeep));
        assert!(decode(&nested[1..]).is_ok());
        assert_eq!(Item::Bytes(&[0, 1]).uint("x", 16), Err(RlpError::Integer("x")));
        assert_eq!(Item::Bytes(&[1; 9]).uint("x", 8), Err(RlpError::Integer("x")));
        assert_eq!(Item::Bytes(&[1, 0]).uint("x", 8), Ok(256));
        assert_eq!(Item::Bytes(&[]).uint("x", 8), Ok(0));
        assert_eq!(Item::List(vec![]).uint("x", 8), Err(RlpError::Shape("x")));
    }

    #[test]
    fn decoder_never_panics_on_prefixes_of_valid_input() {
        let mut payload = Vec::new();
        put_bytes(&mut payload, &[7; 100]);
        put_uint(&mut payload, u128::MAX);
        let mut inner = Vec::new();
        put_list(&mut inner, &payload);
        let mut outer = Vec::new();
        put_list(&mut outer, &[inner.clone(), payload].concat());
        assert!(decode(&outer).is_ok());
        for end in 0..outer.len() {
            assert!(decode(&outer[..end]).is_err(), "prefix of {end} bytes");
        }
    }
}
