//! A line reader with a bound on line length, for files nobody has checked.
//!
//! Invariant: memory use is bounded by [`MAX_LINE_BYTES`] whatever the input: a longer line is
//! consumed without being kept and reported as [`Line::TooLong`].

use std::io::{self, BufRead};

/// Longest line kept. An item is at most 400 KB, but its text can be several times larger
/// (base64 binaries, `\u` escapes), so the bound is generous.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

pub(crate) struct LineReader<R: BufRead> {
    source: R,
    /// Number of the line `next` returns next (1-based).
    line: u64,
    max: usize,
    done: bool,
}

impl<R: BufRead> LineReader<R> {
    pub(crate) fn new(source: R, max: usize) -> Self {
        LineReader {
            source,
            line: 1,
            max,
            done: false,
        }
    }

    /// The next line (without `\n` or `\r\n`) and its number; `None` at the end. A UTF-8 byte
    /// order mark at the start of the file is dropped.
    pub(crate) fn next_line(&mut self) -> Option<io::Result<(u64, Line)>> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let chunk = match self.source.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if chunk.is_empty() {
                self.done = true;
                if !saw_any {
                    return None;
                }
                break;
            }
            saw_any = true;
            let (take, found) = match chunk.iter().position(|&b| b == b'\n') {
                Some(k) => (k + 1, true),
                None => (chunk.len(), false),
            };
            let content = if found { &chunk[..take - 1] } else { chunk };
            if !too_long {
                if buf.len() + content.len() > self.max {
                    too_long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(content);
                }
            }
            self.source.consume(take);
            if found {
                break;
            }
        }
        let number = self.line;
        self.line += 1;
        if too_long {
            return Some(Ok((number, Line::TooLong)));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if number == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
            buf.drain(..3);
        }
        Some(Ok((
            number,
            match String::from_utf8(buf) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::NotUtf8,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<(u64, Line)> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line() {
            out.push(l.unwrap());
        }
        out
    }

    #[test]
    fn lines_numbers_and_limits() {
        assert_eq!(all(b"", 10), vec![]);
        assert_eq!(
            all(b"\xEF\xBB\xBFa\r\nbb\n\nccc", 10),
            vec![
                (1, Line::Text("a".into())),
                (2, Line::Text("bb".into())),
                (3, Line::Text(String::new())),
                (4, Line::Text("ccc".into()))
            ]
        );
        assert_eq!(
            all(b"0123456789ab\nok\n\xff\n", 10),
            vec![
                (1, Line::TooLong),
                (2, Line::Text("ok".into())),
                (3, Line::NotUtf8)
            ]
        );
    }
}
