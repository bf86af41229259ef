//! Reading the records of one data file: decompression, then the format's reader, with line
//! numbers, resumable positions, and the 400 KB item limit.
//!
//! Invariant: every problem in the input becomes a [`LineError`] for the record it concerns and
//! reading goes on with the next record; an unreadable stream (truncated gzip, say) ends the
//! file with one [`LineErrorKind::Io`] error. Nothing here panics on input.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Read};

use ferrodyn_model::size::item_size;
use ferrodyn_model::{Item, ScalarType};

use crate::csv::{record_to_item, CsvOptions, CsvSplitter};
use crate::error::{LineError, LineErrorKind};
use crate::format::{Compression, InputFormat, Record};
use crate::ion;
use crate::ion::text::{parse_stream, Rest};
use crate::lines::{Line, LineReader, MAX_LINE_BYTES};
use crate::{compress, json};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The message DynamoDB gives for an item over [`MAX_ITEM_BYTES`].
pub const ITEM_TOO_LARGE: &str = "Item size has exceeded the maximum allowed size";

/// Where a record starts in its file: the 1-based line, and the record's index among those
/// starting on that line (0 unless a line holds several Ion values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub line: u64,
    pub index: u32,
}

impl Location {
    /// The first location after this one: where to resume once this record is loaded.
    pub fn after(self) -> Location {
        Location {
            line: self.line,
            index: self.index.saturating_add(1),
        }
    }
}

/// How to read a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    pub format: InputFormat,
    pub compression: Compression,
    /// Used for [`InputFormat::Csv`] only.
    pub csv: CsvOptions,
    /// Key attributes of the table and its secondary indexes, by name: CSV columns with these
    /// names get their key type, every other column is a string.
    pub key_types: HashMap<String, ScalarType>,
}

impl ReadOptions {
    pub fn new(format: InputFormat, compression: Compression) -> ReadOptions {
        ReadOptions {
            format,
            compression,
            csv: CsvOptions::default(),
            key_types: HashMap::new(),
        }
    }
}

enum Parser {
    Json(LineReader<BufReader<Box<dyn Read>>>),
    Ion {
        lines: LineReader<BufReader<Box<dyn Read>>>,
        /// Text of values not yet complete, and the line it starts on.
        pending: String,
        pending_line: u64,
        /// Parse again once `pending` is at least this long (grows geometrically, so a value
        /// spread over many lines is parsed O(log n) times).
        reparse_at: usize,
    },
    Csv {
        splitter: CsvSplitter<BufReader<Box<dyn Read>>>,
        header: Option<Vec<String>>,
        key_types: HashMap<String, ScalarType>,
    },
}

/// The records of one data file, in order, each with its [`Location`].
pub struct RecordReader {
    name: String,
    parser: Parser,
    queue: VecDeque<(Location, Result<Record, LineError>)>,
    /// Records before this location are read but not returned.
    resume: Location,
    last: Option<Location>,
    done: bool,
}

impl RecordReader {
    /// Reads `source`, named `name` in errors (its key, usually).
    pub fn new(
        name: &str,
        source: impl Read + 'static,
        options: &ReadOptions,
    ) -> io::Result<RecordReader> {
        let plain =
            BufReader::with_capacity(64 * 1024, compress::decoder(options.compression, source)?);
        let parser = match options.format {
            InputFormat::DynamoDbJson => Parser::Json(LineReader::new(plain, MAX_LINE_BYTES)),
            InputFormat::Ion => Parser::Ion {
                lines: LineReader::new(plain, MAX_LINE_BYTES),
                pending: String::new(),
                pending_line: 0,
                reparse_at: 0,
            },
            InputFormat::Csv => Parser::Csv {
                splitter: CsvSplitter::new(plain, options.csv.delimiter),
                header: options.csv.header_list.clone(),
                key_types: options.key_types.clone(),
            },
        };
        Ok(RecordReader {
            name: name.to_string(),
            parser,
            queue: VecDeque::new(),
            resume: Location::default(),
            last: None,
            done: false,
        })
    }

    /// Skips every record before `location` (a location from an earlier read of the same file,
    /// usually `Location::after` of the last record loaded).
    pub fn resume_at(mut self, location: Location) -> RecordReader {
        self.resume = location;
        self
    }

    fn error(&self, line: u64, kind: LineErrorKind, message: impl Into<String>) -> LineError {
        LineError {
            file: self.name.clone(),
            line,
            kind,
            message: message.into(),
        }
    }

    /// Queues a record (or error) starting on `line`, numbering records that share a line.
    fn emit(&mut self, line: u64, result: Result<Record, LineError>) {
        let index = match self.last {
            Some(last) if last.line == line => last.index.saturating_add(1),
            _ => 0,
        };
        let location = Location { line, index };
        self.last = Some(location);
        if location < self.resume {
            return;
        }
        let result = result.and_then(|record| self.check_size(line, record));
        self.queue.push_back((location, result));
    }

    fn check_size(&self, line: u64, record: Record) -> Result<Record, LineError> {
        let too_large = |item: &Item| item_size(item) > MAX_ITEM_BYTES;
        let over = match &record {
            Record::Item(item) => too_large(item),
            Record::Change(c) => c.new_image.as_ref().is_some_and(too_large),
        };
        if over {
            return Err(self.error(line, LineErrorKind::TooLarge, ITEM_TOO_LARGE));
        }
        Ok(record)
    }

    /// Reads until at least one record is queued or the file ends.
    fn fill(&mut self) {
        while self.queue.is_empty() && !self.done {
            match &mut self.parser {
                Parser::Json(_) => self.step_json(),
                Parser::Ion { .. } => self.step_ion(),
                Parser::Csv { .. } => self.step_csv(),
            }
        }
    }

    fn io_failure(&mut self, line: u64, e: &io::Error) {
        self.done = true;
        let err = self.error(
            line,
            LineErrorKind::Io,
            format!("The file could not be read: {e}"),
        );
        // Not subject to `resume`: a failure to read is news whatever was loaded before.
        self.queue
            .push_back((Location { line, index: 0 }, Err(err)));
    }

    fn step_json(&mut self) {
        let Parser::Json(lines) = &mut self.parser else {
            return;
        };
        let next_line = lines.next_line();
        match next_line {
            None => self.done = true,
            Some(Err(e)) => {
                let line = self.last.map_or(1, |l| l.line + 1);
                self.io_failure(line, &e);
            }
            Some(Ok((line, content))) => {
                if line < self.resume.line {
                    return;
                }
                match content {
                    Line::Text(text) if text.trim().is_empty() => {}
                    Line::Text(text) => {
                        let record = json::parse_line(&text)
                            .map_err(|m| self.error(line, LineErrorKind::Invalid, m));
                        self.emit(line, record);
                    }
                    Line::TooLong => {
                        let e = self.error(line, LineErrorKind::TooLarge, "The line is too long");
                        self.emit(line, Err(e));
                    }
                    Line::NotUtf8 => {
                        let e =
                            self.error(line, LineErrorKind::Invalid, "The line is not valid UTF-8");
                        self.emit(line, Err(e));
                    }
                }
            }
        }
    }

    fn step_ion(&mut self) {
        let Parser::Ion {
            lines,
            pending,
            pending_line,
            reparse_at,
        } = &mut self.parser
        else {
            return;
        };
        let next_line = lines.next_line();
        let (line, text) = match next_line {
            Some(Ok((line, Line::Text(text)))) => (line, text),
            None => {
                self.done = true;
                if !pending.trim().is_empty() {
                    let start = *pending_line;
                    let text = std::mem::take(pending);
                    self.parse_ion_pending(start, text, true);
                }
                return;
            }
            Some(Err(e)) => {
                let line = (*pending_line).max(self.last.map_or(1, |l| l.line + 1));
                self.io_failure(line, &e);
                return;
            }
            Some(Ok((line, bad))) => {
                // A line that cannot be kept also ruins any value it continues.
                let start = if pending.is_empty() {
                    line
                } else {
                    *pending_line
                };
                pending.clear();
                *reparse_at = 0;
                let (kind, message) = match bad {
                    Line::TooLong => (LineErrorKind::TooLarge, "The line is too long"),
                    _ => (LineErrorKind::Invalid, "The line is not valid UTF-8"),
                };
                let e = self.error(start, kind, message);
                self.emit(start, Err(e));
                return;
            }
        };
        if pending.is_empty() {
            if text.trim().is_empty() {
                return;
            }
            *pending_line = line;
        } else {
            pending.push('\n');
        }
        pending.push_str(&text);
        if pending.len() > MAX_LINE_BYTES {
            let start = *pending_line;
            pending.clear();
            *reparse_at = 0;
            let e = self.error(start, LineErrorKind::TooLarge, "The Ion value is too long");
            self.emit(start, Err(e));
            return;
        }
        if pending.len() < *reparse_at {
            return;
        }
        let start = *pending_line;
        let text = std::mem::take(pending);
        self.parse_ion_pending(start, text, false);
    }

    /// Parses buffered Ion text starting on `start_line`; keeps an incomplete tail for later
    /// unless the file has ended.
    fn parse_ion_pending(&mut self, start_line: u64, text: String, at_end: bool) {
        let (values, rest) = parse_stream(&text);
        let mut line = start_line;
        let mut counted = 0usize;
        let mut line_of = |offset: usize| {
            line += text.as_bytes()[counted..offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            counted = offset;
            line
        };
        let mut results = Vec::with_capacity(values.len() + 1);
        for (offset, value) in &values {
            results.push((line_of(*offset), ion::record_of(value)));
        }
        let mut keep = None;
        match rest {
            Rest::Done => {}
            Rest::Incomplete(offset) if !at_end => keep = Some((line_of(offset), offset)),
            Rest::Incomplete(offset) => {
                results.push((
                    line_of(offset),
                    Err("Invalid Ion: the file ends inside a value".to_string()),
                ));
            }
            Rest::Invalid(offset, message) => results.push((line_of(offset), Err(message))),
        }
        for (line, result) in results {
            let result = result.map_err(|m| self.error(line, LineErrorKind::Invalid, m));
            self.emit(line, result);
        }
        if let Parser::Ion {
            pending,
            pending_line,
            reparse_at,
            ..
        } = &mut self.parser
        {
            match keep {
                Some((line, offset)) => {
                    *pending = text[offset..].to_string();
                    *pending_line = line;
                    *reparse_at = pending.len() + (pending.len() / 2).max(1);
                }
                None => *reparse_at = 0,
            }
        }
    }

    fn step_csv(&mut self) {
        let Parser::Csv {
            splitter,
            header,
            key_types,
        } = &mut self.parser
        else {
            return;
        };
        let next = splitter.next_record();
        let (line, fields) = match next {
            None => {
                self.done = true;
                return;
            }
            Some(Err(e)) => {
                let line = self.last.map_or(1, |l| l.line + 1);
                self.io_failure(line, &e);
                return;
            }
            Some(Ok(record)) => record,
        };
        let Some(header) = header else {
            match fields {
                Ok(names) => *header = Some(names),
                Err(message) => {
                    // Without a header no record of the file can be read.
                    self.done = true;
                    let e = self.error(
                        line,
                        LineErrorKind::Invalid,
                        format!("Invalid CSV header: {message}"),
                    );
                    self.emit(line, Err(e));
                }
            }
            return;
        };
        if line < self.resume.line {
            return;
        }
        let result = fields
            .and_then(|f| record_to_item(header, &f, key_types))
            .map(Record::Item)
            .map_err(|m| self.error(line, LineErrorKind::Invalid, m));
        self.emit(line, result);
    }
}

impl Iterator for RecordReader {
    type Item = (Location, Result<Record, LineError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.fill();
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrodyn_model::AttributeValue;

    fn read(
        text: &str,
        format: InputFormat,
        from: Location,
    ) -> Vec<(Location, Result<Record, LineError>)> {
        RecordReader::new(
            "f",
            std::io::Cursor::new(text.as_bytes().to_vec()),
            &ReadOptions::new(format, Compression::None),
        )
        .unwrap()
        .resume_at(from)
        .collect()
    }

    fn pk(r: &Result<Record, LineError>) -> String {
        match r {
            Ok(Record::Item(item)) => match &item["pk"] {
                AttributeValue::S(s) => s.clone(),
                other => format!("{other:?}"),
            },
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn ion_values_spanning_and_sharing_lines() {
        let text = "$ion_1_0 {Item:{pk:\"a\"}} {Item:{pk:\"b\"}}\n\n{\n  Item: {\n    pk: \"c\" // comment\n  }\n}\n{Item:{pk:1d999}}\n{Item:{pk:\"e\"}}";
        let all = read(text, InputFormat::Ion, Location::default());
        let summary: Vec<(u64, u32, String)> =
            all.iter().map(|(l, r)| (l.line, l.index, pk(r))).collect();
        assert_eq!(summary[0], (1, 0, "a".into()));
        assert_eq!(summary[1], (1, 1, "b".into()));
        assert_eq!(summary[2], (3, 0, "c".into()));
        assert_eq!(
            (summary[3].0, all[3].1.as_ref().unwrap_err().kind),
            (8, LineErrorKind::Invalid)
        );
        assert_eq!(summary[4], (9, 0, "e".into()));
        // Resuming after "a" gives "b" onwards; after "c" gives the error line onwards.
        let rest = read(text, InputFormat::Ion, all[0].0.after());
        assert_eq!(
            rest.iter().map(|(_, r)| pk(r)).next(),
            Some("b".to_string())
        );
        assert_eq!(rest.len(), 4);
        assert_eq!(read(text, InputFormat::Ion, all[2].0.after()).len(), 2);
        // A value the file cuts off is an error at the line where it starts.
        let cut = read(
            "{Item:{pk:\"a\"}}\n{Item:\n{pk:",
            InputFormat::Ion,
            Location::default(),
        );
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[1].0.line, 2);
        assert!(cut[1].1.is_err());
    }

    #[test]
    fn json_positions_and_resume() {
        let text = "{\"Item\":{\"pk\":{\"S\":\"a\"}}}\n\n{\"Item\":{\"pk\":{\"S\":\"b\"}}}\r\nnot json\n{\"Item\":{\"pk\":{\"S\":\"c\"}}}\n";
        let all = read(text, InputFormat::DynamoDbJson, Location::default());
        let lines: Vec<u64> = all.iter().map(|(l, _)| l.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
        assert!(all[2].1.is_err());
        let rest = read(text, InputFormat::DynamoDbJson, all[1].0.after());
        assert_eq!(rest.len(), 2);
        assert_eq!(pk(&rest[1].1), "c");
    }

    #[test]
    fn an_unclosed_ion_value_is_not_quadratic() {
        // 200 000 lines inside a long string that never closes: read in well under a second.
        let mut text = String::from("{Item:{pk:'''");
        for _ in 0..200_000 {
            text.push_str("some text on a line\n");
        }
        let started = std::time::Instant::now();
        let all = read(&text, InputFormat::Ion, Location::default());
        assert_eq!(all.len(), 1);
        assert!(all[0].1.is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
