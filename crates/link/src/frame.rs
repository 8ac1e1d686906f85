//! Frames: a 4-byte big-endian length, then the postcard bytes of one message. Once a
//! connection is sealed with its session key, each frame also ends with a keyed BLAKE3 tag over
//! its direction, its number on the connection and its bytes.

use crate::LinkError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest message in a frame (a state read sends its bytes in chunks below this).
pub(crate) const FRAME_MAX: usize = 16 << 20;
/// The largest frame before the handshake is done: nobody unauthenticated gets to make us
/// allocate more.
pub(crate) const HANDSHAKE_FRAME_MAX: usize = 1024;
const TAG_LEN: usize = 32;

/// Which way a frame travels (part of its tag: a frame cannot be reflected back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    ToServer = 0,
    ToClient = 1,
}

#[derive(Debug)]
struct Seal {
    key: [u8; 32],
    direction: Direction,
    /// Frames so far in this direction.
    count: u64,
}

impl Seal {
    fn tag(&mut self, payload: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&[self.direction as u8]).update(&self.count.to_le_bytes()).update(payload);
        self.count = self.count.wrapping_add(1);
        h.finalize()
    }
}

#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    seal: Option<Seal>,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R) -> FrameReader<R> {
        FrameReader { inner, seal: None, max: HANDSHAKE_FRAME_MAX }
    }

    /// From now on every frame must carry the tag of `key` for `direction`.
    pub(crate) fn seal(&mut self, key: [u8; 32], direction: Direction) {
        self.seal = Some(Seal { key, direction, count: 0 });
        self.max = FRAME_MAX;
    }

    /// The next message; `None` when the peer closed the connection between frames.
    pub(crate) async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LinkError> {
        let mut len = [0u8; 4];
        match self.inner.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        let tag_len = if self.seal.is_some() { TAG_LEN } else { 0 };
        if len < tag_len || len - tag_len > self.max {
            return Err(LinkError::Protocol(format!("a frame of {len} bytes is out of bounds")));
        }
        let mut body = vec![0u8; len];
        self.inner.read_exact(&mut body).await?;
        if let Some(seal) = &mut self.seal {
            let payload_len = len - TAG_LEN;
            let (payload, tag) = body.split_at(payload_len);
            let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| bad_tag())?;
            // `Hash` compares in constant time.
            if seal.tag(payload) != blake3::Hash::from_bytes(tag) {
                return Err(bad_tag());
            }
            body.truncate(payload_len);
        }
        postcard::from_bytes(&body)
            .map(Some)
            .map_err(|e| LinkError::Protocol(format!("a frame does not decode: {e}")))
    }
}

fn bad_tag() -> LinkError {
    LinkError::Protocol("a frame's tag is wrong: changed, replayed or out of order".into())
}

#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    inner: W,
    seal: Option<Seal>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(inner: W) -> FrameWriter<W> {
        FrameWriter { inner, seal: None }
    }

    pub(crate) fn seal(&mut self, key: [u8; 32], direction: Direction) {
        self.seal = Some(Seal { key, direction, count: 0 });
    }

    /// Queues one message (call `flush` to send what is queued).
    pub(crate) async fn write<T: Serialize>(&mut self, message: &T) -> Result<(), LinkError> {
        let mut body = postcard::to_allocvec(message)
            .map_err(|e| LinkError::Protocol(format!("cannot encode a frame: {e}")))?;
        if body.len() > FRAME_MAX {
            return Err(LinkError::Protocol(format!(
                "a message of {} bytes is over the frame limit",
                body.len()
            )));
        }
        if let Some(seal) = &mut self.seal {
            let tag = seal.tag(&body);
            body.extend_from_slice(tag.as_bytes());
        }
        let len = u32::try_from(body.len())
            .map_err(|_| LinkError::Protocol("a frame over 4 GiB".into()))?;
        self.inner.write_all(&len.to_be_bytes()).await?;
        self.inner.write_all(&body).await?;
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), LinkError> {
        self.inner.flush().await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    async fn roundtrip(tamper: impl FnOnce(&mut Vec<u8>)) -> Result<Option<Vec<u64>>, LinkError> {
        let mut bytes = Vec::new();
        let mut w = FrameWriter::new(&mut bytes);
        w.seal([7; 32], Direction::ToClient);
        w.write(&vec![1u64, 2, 3]).await.unwrap();
        w.flush().await.unwrap();
        tamper(&mut bytes);
        let mut r = FrameReader::new(bytes.as_slice());
        r.seal([7; 32], Direction::ToClient);
        r.read::<Vec<u64>>().await
    }

    #[tokio::test]
    async fn sealed_frames_round_trip_and_any_change_is_refused() {
        assert_eq!(roundtrip(|_| {}).await.unwrap(), Some(vec![1, 2, 3]));
        let flipped = roundtrip(|b| b[5] ^= 1).await.unwrap_err().to_string();
        assert!(flipped.contains("tag is wrong"), "{flipped}");
        let tag = roundtrip(|b| *b.last_mut().unwrap() ^= 1).await.unwrap_err().to_string();
        assert!(tag.contains("tag is wrong"), "{tag}");
        let huge = roundtrip(|b| b[..4].copy_from_slice(&u32::MAX.to_be_bytes())).await;
        assert!(huge.unwrap_err().to_string().contains("out of bounds"));
        assert!(roundtrip(|b| b.clear()).await.unwrap().is_none(), "a clean end is no error");
    }

    #[tokio::test]
    async fn the_second_frame_under_the_first_ones_number_is_refused() {
        // The same frame twice: the second is checked against number 1.
        let mut bytes = Vec::new();
        let mut w = FrameWriter::new(&mut bytes);
        w.seal([7; 32], Direction::ToServer);
        w.write(&5u64).await.unwrap();
        let once = bytes.clone();
        bytes.extend_from_slice(&once);
        let mut r = FrameReader::new(bytes.as_slice());
        r.seal([7; 32], Direction::ToServer);
        assert_eq!(r.read::<u64>().await.unwrap(), Some(5));
        assert!(r.read::<u64>().await.is_err());
        // The other direction's key schedule does not accept it either.
        let mut r = FrameReader::new(once.as_slice());
        r.seal([7; 32], Direction::ToClient);
        assert!(r.read::<u64>().await.is_err());
    }

    #[tokio::test]
    async fn before_the_handshake_frames_are_small() {
        let mut bytes = (HANDSHAKE_FRAME_MAX as u32 + 1).to_be_bytes().to_vec();
        bytes.resize(HANDSHAKE_FRAME_MAX + 5, 0);
        let mut r = FrameReader::new(bytes.as_slice());
        assert!(r.read::<Vec<u8>>().await.is_err());
    }
}
