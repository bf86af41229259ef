//! Compression of data files: GZIP, ZSTD and NONE readers, and the GZIP writer exports use.
//!
//! Owns: turning a compressed byte stream into a plain one and back. Concatenated gzip members
//! and zstd frames (and skippable zstd frames) are read as one stream, as tools that write
//! them in parallel produce. A truncated or corrupt stream is an `io::Error`, never a panic.

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::format::Compression;

/// A reader of the plain bytes of `source`. An empty source (a zero-byte object, as an empty
/// partition may produce) reads as empty whatever the compression.
pub fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    source: R,
) -> io::Result<Box<dyn Read + 'a>> {
    let mut source = BufReader::new(source);
    if compression != Compression::None && source.fill_buf()?.is_empty() {
        return Ok(Box::new(io::empty()));
    }
    Ok(match compression {
        Compression::None => Box::new(source),
        Compression::Gzip => Box::new(MultiGzDecoder::new(source)),
        Compression::Zstd => Box::new(ZstdReader {
            source,
            frame: FrameDecoder::new(),
            in_frame: false,
        }),
    })
}

/// A GZIP writer at the default level; call `finish` to write the trailer.
pub fn gzip_encoder<W: Write>(target: W) -> GzEncoder<W> {
    GzEncoder::new(target, flate2::Compression::default())
}

/// Compresses `data` as one zstd frame (tests and tools; exports write GZIP).
pub fn zstd_compress(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// Reads any number of zstd frames back to back.
struct ZstdReader<R: Read> {
    source: BufReader<R>,
    frame: FrameDecoder,
    in_frame: bool,
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid zstd data: {e}"),
    )
}

impl<R: Read> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.frame.init(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let skipped = io::copy(
                            &mut (&mut self.source).take(u64::from(length)),
                            &mut io::sink(),
                        )?;
                        if skipped < u64::from(length) {
                            return Err(corrupt("truncated skippable frame"));
                        }
                        continue;
                    }
                    Err(e) => return Err(corrupt(e)),
                }
            }
            if self.frame.can_collect() == 0 && !self.frame.is_finished() {
                self.frame
                    .decode_blocks(
                        &mut self.source,
                        BlockDecodingStrategy::UptoBytes(buf.len()),
                    )
                    .map_err(corrupt)?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.frame.is_finished() {
                self.in_frame = false;
                continue;
            }
            // The decoder made no progress and is not finished: the input ended mid-frame.
            if self.source.fill_buf()?.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "invalid zstd data: the stream ends inside a frame",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(c: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(c, data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = gzip_encoder(Vec::new());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trips_and_concatenation() {
        let a = b"first line\n".repeat(1000);
        let b = b"second\n".to_vec();
        assert_eq!(read_all(Compression::None, &a).unwrap(), a);
        let mut two = gzip(&a);
        two.extend(gzip(&b));
        assert_eq!(
            read_all(Compression::Gzip, &two).unwrap(),
            [&a[..], &b[..]].concat()
        );
        let mut frames = zstd_compress(&a);
        // A skippable frame between two data frames.
        frames.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        frames.extend(zstd_compress(&b));
        assert_eq!(
            read_all(Compression::Zstd, &frames).unwrap(),
            [&a[..], &b[..]].concat()
        );
        assert_eq!(read_all(Compression::Zstd, &[]).unwrap(), Vec::<u8>::new());
        assert_eq!(read_all(Compression::Gzip, &[]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn truncated_or_corrupt_streams_are_errors() {
        let data = b"some data that compresses\n".repeat(500);
        let gz = gzip(&data);
        for cut in [1, 10, gz.len() / 2, gz.len() - 1] {
            assert!(
                read_all(Compression::Gzip, &gz[..cut]).is_err(),
                "gzip cut at {cut}"
            );
        }
        let zs = zstd_compress(&data);
        for cut in [1, 3, 5, zs.len() / 2, zs.len() - 1] {
            assert!(
                read_all(Compression::Zstd, &zs[..cut]).is_err(),
                "zstd cut at {cut}"
            );
        }
        assert!(read_all(Compression::Gzip, b"not gzip at all").is_err());
        assert!(read_all(Compression::Zstd, b"not zstd at all").is_err());
    }
}
