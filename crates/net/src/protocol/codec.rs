//! The codec every request-response protocol shares: one message per stream, read to its end
//! with a cap before it is decoded, into pooled buffers for bulk messages.

use std::sync::Mutex;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use peerchain_primitives::{Decode, DecodeError, Encode};

/// A message of a request-response protocol, with the most bytes it may take on the wire.
pub trait Message: Encode + Decode + Send + 'static {
    /// The size cap, checked before decoding.
    const MAX_BYTES: usize;
    /// The buffer to start reading into: a bulk message read into a growing buffer would be
    /// copied again at every doubling. Buffers of bulk messages (over 64 KiB) are reused.
    const TYPICAL_BYTES: usize = 4096;

    /// Decodes a message read whole into `buffer`. A message with a bulk payload may keep
    /// the buffer and point into it rather than copy the payload out.
    fn from_buffer(buffer: ReadBuffer) -> Result<Self, DecodeError> {
        Self::from_bytes(&buffer)
    }

    /// Encodes all but a bulk tail into `head`, and returns the tail, which is written
    /// after it as is rather than copied into the encoding.
    fn encode_head(&self, head: &mut Vec<u8>) -> &[u8] {
        self.encode_to(head);
        &[]
    }
}

/// Buffers are pooled from this size up: below it, allocation is cheap.
const POOLED_FROM: usize = 64 << 10;
/// Buffers are pooled up to this size: a file range (4.3 MB) fits, a batch of maximal
/// blocks (rare) is freed after use.
const POOLED_UP_TO: usize = 8 << 20;
/// Most idle buffers kept.
const POOL_CAPACITY: usize = 16;
/// Security: the most bytes the idle buffers may hold together, whatever peers send.
pub const POOL_MAX_BYTES: usize = 64 << 20;
/// Idle read buffers of bulk messages. Reuse spares a bulk read the page faults of fresh
/// memory and the zeroing that reading into it takes, which a profile of a file transfer
/// showed as a tenth of the downloader's CPU.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The bytes of one message as read from a stream, in a buffer that goes back to the pool
/// when dropped.
#[derive(Debug)]
pub struct ReadBuffer {
    buffer: Vec<u8>,
    len: usize,
}

impl ReadBuffer {
    fn take(size: usize) -> ReadBuffer {
        let pooled = if size >= POOLED_FROM {
            let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pool.iter().position(|b| b.len() >= size).map(|i| pool.swap_remove(i))
        } else {
            None
        };
        ReadBuffer { buffer: pooled.unwrap_or_else(|| vec![0; size]), len: 0 }
    }
}

impl std::ops::Deref for ReadBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl AsRef<[u8]> for ReadBuffer {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let size = self.buffer.len();
        if (POOLED_FROM..=POOLED_UP_TO).contains(&size) {
            let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let pooled: usize = pool.iter().map(Vec::len).sum();
            if pool.len() < POOL_CAPACITY && pooled + size <= POOL_MAX_BYTES {
                pool.push(std::mem::take(&mut self.buffer));
            }
        }
    }
}

/// The bytes the idle read buffers hold now.
pub fn pooled_bytes() -> usize {
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().map(Vec::len).sum()
}

/// The request-response codec: one message per stream, read to its end with a cap.
#[derive(Debug)]
pub struct Codec<Q, A>(std::marker::PhantomData<fn() -> (Q, A)>);

impl<Q, A> Default for Codec<Q, A> {
    fn default() -> Self {
        Codec(std::marker::PhantomData)
    }
}

impl<Q, A> Clone for Codec<Q, A> {
    fn clone(&self) -> Self {
        Codec::default()
    }
}

/// Reads a stream to its end. Security: one byte past the cap tells an oversized message
/// from a maximal one, and is all that is ever read of it.
async fn read_capped<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
    typical: usize,
) -> std::io::Result<ReadBuffer> {
    // Unlike `read_to_end`, which zeroes its spare capacity before every read, this zeroes
    // a buffer once, when it is first allocated.
    let mut read = ReadBuffer::take(typical.min(max) + 1);
    loop {
        if read.len == read.buffer.len() {
            let grown = (read.buffer.len() * 2).min(max + 1);
            read.buffer.resize(grown, 0);
        }
        let n = io.read(&mut read.buffer[read.len..]).await?;
        if n == 0 {
            return Ok(read);
        }
        read.len += n;
        if read.len > max {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "message over the size limit"));
        }
    }
}

/// Decodes a message as the codec does once it has read it from a stream (through
/// [`Message::from_buffer`]): for the fuzz targets, which feed it arbitrary bytes.
pub fn decode_from_wire<M: Message>(bytes: &[u8]) -> Result<M, DecodeError> {
    if bytes.len() > M::MAX_BYTES {
        return Err(DecodeError::TooLong { what: "message", got: bytes.len() as u64, max: M::MAX_BYTES as u64 });
    }
    let mut buffer = ReadBuffer::take(bytes.len());
    buffer.buffer[..bytes.len()].copy_from_slice(bytes);
    buffer.len = bytes.len();
    M::from_buffer(buffer)
}

pub(crate) async fn read_message<M: Message, T: AsyncRead + Unpin + Send>(io: &mut T) -> std::io::Result<M> {
    let buffer = read_capped(io, M::MAX_BYTES, M::TYPICAL_BYTES).await?;
    M::from_buffer(buffer).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

pub(crate) async fn write_message<M: Message, T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    message: M,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let tail = message.encode_head(&mut head);
    io.write_all(&head).await?;
    if !tail.is_empty() {
        io.write_all(tail).await?;
    }
    io.close().await
}

impl<Q: Message, A: Message> libp2p::request_response::Codec for Codec<Q, A> {
    type Protocol = StreamProtocol;
    type Request = Q;
    type Response = A;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Q> {
        read_message(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<A> {
        read_message(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Q,
    ) -> std::io::Result<()> {
        write_message(io, request).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: A,
    ) -> std::io::Result<()> {
        write_message(io, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review L5: however many large messages peers send, the idle buffers kept for reuse stay
    /// within [`POOL_MAX_BYTES`] (they once could keep 16 of 32.8 MB).
    #[test]
    fn the_read_buffer_pool_stays_bounded_whatever_peers_send() {
        futures::executor::block_on(async {
            for size in [5 << 20, 20 << 20, super::super::MAX_RESPONSE_BYTES] {
                // Sixteen messages read at once, then all dropped.
                let mut held = Vec::new();
                for _ in 0..16 {
                    let mut stream = futures::io::Cursor::new(vec![7u8; size]);
                    held.push(read_capped(&mut stream, super::super::MAX_RESPONSE_BYTES, 4096).await.unwrap());
                }
                drop(held);
                let pooled = pooled_bytes();
                assert!(pooled <= POOL_MAX_BYTES, "{pooled} bytes kept after messages of {size}");
            }
        });
    }
}
