//! CSV import files (RFC 4180), as ImportTable reads them.
//!
//! Owns: `CsvOptions` (`Delimiter`, `HeaderList`), record splitting with quoted fields (which
//! may hold delimiters, `""` quotes and newlines), and the mapping of a record to an item: the
//! header (the first record, unless a header list is given) names the columns; key attributes
//! of the table and its secondary indexes get their key type (S, N or B, base64 for B); every
//! other column is a string; an empty cell is left out of the item.
//!
//! Invariants: never panics on any input (proptest `csv_reader_never_panics`); a record is at
//! most [`MAX_RECORD_BYTES`] long, a longer one is an error and is skipped.

use std::collections::HashMap;
use std::io::{self, BufRead};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ferrodyn_model::{AttributeValue, Item, Number, ScalarType};

/// Longest CSV record kept.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// The delimiters `CsvOptions.Delimiter` accepts.
pub const DELIMITERS: &[u8] = b",;:|\t ";

/// ImportTable's `CsvOptions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    /// Column names; when given, the first line of each file is data, not a header.
    pub header_list: Option<Vec<String>>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            header_list: None,
        }
    }
}

impl CsvOptions {
    /// Options with a delimiter from the service's pattern `[,;:|\t ]`.
    pub fn new(delimiter: char, header_list: Option<Vec<String>>) -> Result<CsvOptions, String> {
        let d = u8::try_from(delimiter)
            .ok()
            .filter(|d| DELIMITERS.contains(d))
            .ok_or_else(|| format!("Invalid CSV delimiter {delimiter:?}"))?;
        Ok(CsvOptions {
            delimiter: d,
            header_list,
        })
    }
}

/// A record's starting line and its fields, or why it is invalid.
pub(crate) type SplitRecord = (u64, Result<Vec<String>, String>);

/// Splits a CSV stream into records of fields.
pub(crate) struct CsvSplitter<R: BufRead> {
    source: R,
    delimiter: u8,
    /// Line number where the next record starts (1-based).
    line: u64,
    done: bool,
    bom_checked: bool,
}

enum Byte {
    Some(u8),
    End,
}

impl<R: BufRead> CsvSplitter<R> {
    pub(crate) fn new(source: R, delimiter: u8) -> Self {
        CsvSplitter {
            source,
            delimiter,
            line: 1,
            done: false,
            bom_checked: false,
        }
    }

    fn peek(&mut self) -> io::Result<Byte> {
        loop {
            match self.source.fill_buf() {
                Ok(b) => return Ok(b.first().map_or(Byte::End, |&c| Byte::Some(c))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn bump(&mut self) {
        self.source.consume(1);
    }

    /// The next record: its starting line and its fields (or why it is invalid). Empty lines
    /// are skipped. `None` at the end of the input.
    pub(crate) fn next_record(&mut self) -> Option<io::Result<SplitRecord>> {
        match self.read_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn read_record(&mut self) -> io::Result<Option<SplitRecord>> {
        if self.done {
            return Ok(None);
        }
        if !self.bom_checked {
            self.bom_checked = true;
            let buf = self.source.fill_buf()?;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                self.source.consume(3);
            }
        }
        loop {
            // Skip empty lines.
            match self.peek()? {
                Byte::End => {
                    self.done = true;
                    return Ok(None);
                }
                Byte::Some(b'\n') => {
                    self.bump();
                    self.line += 1;
                    continue;
                }
                Byte::Some(b'\r') => {
                    self.bump();
                    if let Byte::Some(b'\n') = self.peek()? {
                        self.bump();
                    }
                    self.line += 1;
                    continue;
                }
                Byte::Some(_) => break,
            }
        }
        let start = self.line;
        let mut fields: Vec<Vec<u8>> = vec![Vec::new()];
        let mut size = 0usize;
        let mut error: Option<String> = None;
        let mut in_quotes = false;
        let mut field_start = true;
        let mut after_quote = false;
        loop {
            let b = match self.peek()? {
                Byte::End => {
                    self.done = true;
                    if in_quotes && error.is_none() {
                        error = Some("Invalid CSV: a quoted field is not closed".to_string());
                    }
                    break;
                }
                Byte::Some(b) => b,
            };
            self.bump();
            if in_quotes {
                if b == b'"' {
                    if let Byte::Some(b'"') = self.peek()? {
                        self.bump();
                        push(&mut fields, b'"', &mut size);
                    } else {
                        in_quotes = false;
                        after_quote = true;
                    }
                } else {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    push(&mut fields, b, &mut size);
                }
            } else if b == b'\n' || b == b'\r' {
                if b == b'\r' {
                    if let Byte::Some(b'\n') = self.peek()? {
                        self.bump();
                    }
                }
                self.line += 1;
                break;
            } else if b == self.delimiter {
                fields.push(Vec::new());
                field_start = true;
                after_quote = false;
                continue;
            } else if after_quote {
                if error.is_none() {
                    error = Some("Invalid CSV: unexpected text after a closing quote".to_string());
                }
            } else if b == b'"' && field_start {
                in_quotes = true;
            } else {
                push(&mut fields, b, &mut size);
            }
            field_start = false;
            if size > MAX_RECORD_BYTES && error.is_none() {
                error = Some(format!(
                    "Invalid CSV: the record is longer than {MAX_RECORD_BYTES} bytes"
                ));
                fields = vec![Vec::new()];
            }
        }
        self.line = self.line.max(start + 1);
        if let Some(e) = error {
            return Ok(Some((start, Err(e))));
        }
        let fields = fields
            .into_iter()
            .map(|f| {
                String::from_utf8(f)
                    .map_err(|_| "Invalid CSV: the record is not valid UTF-8".to_string())
            })
            .collect::<Result<Vec<_>, _>>();
        Ok(Some((start, fields)))
    }
}

fn push(fields: &mut [Vec<u8>], b: u8, size: &mut usize) {
    *size += 1;
    if *size <= MAX_RECORD_BYTES {
        if let Some(f) = fields.last_mut() {
            f.push(b);
        }
    }
}

/// The item a CSV record stands for, given the header and the key attributes' types.
pub fn record_to_item(
    header: &[String],
    fields: &[String],
    key_types: &HashMap<String, ScalarType>,
) -> Result<Item, String> {
    if fields.len() != header.len() {
        return Err(format!(
            "Invalid CSV: the record has {} columns but the header has {}",
            fields.len(),
            header.len()
        ));
    }
    let mut item = Item::new();
    for (name, cell) in header.iter().zip(fields) {
        if cell.is_empty() {
            continue;
        }
        let value = match key_types.get(name) {
            Some(ScalarType::N) => {
                AttributeValue::N(Number::parse(cell).map_err(|e| e.message_for_input(cell))?)
            }
            Some(ScalarType::B) => AttributeValue::B(
                B64.decode(cell)
                    .map_err(|_| format!("Invalid base64 in the binary key attribute {name}"))?,
            ),
            Some(ScalarType::S) | None => AttributeValue::S(cell.clone()),
        };
        item.insert(name.clone(), value);
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str, delimiter: u8) -> Vec<(u64, Result<Vec<String>, String>)> {
        let mut s = CsvSplitter::new(input.as_bytes(), delimiter);
        let mut out = Vec::new();
        while let Some(r) = s.next_record() {
            out.push(r.unwrap());
        }
        out
    }

    fn row(fields: &[&str]) -> Result<Vec<String>, String> {
        Ok(fields.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn rfc4180_records() {
        let text =
            "pk,title,year\r\nA1,\"Dark Side, The\",1973\n\nA2,\"say \"\"hi\"\"\nthere\",\nA3,,x";
        assert_eq!(
            split(text, b','),
            vec![
                (1, row(&["pk", "title", "year"])),
                (2, row(&["A1", "Dark Side, The", "1973"])),
                (4, row(&["A2", "say \"hi\"\nthere", ""])),
                (6, row(&["A3", "", "x"])),
            ]
        );
        assert_eq!(split("a|b\tc\n", b'|'), vec![(1, row(&["a", "b\tc"]))]);
        assert_eq!(split("\u{feff}a,b", b','), vec![(1, row(&["a", "b"]))]);
        let bad = split("\"ab\"c,d\nok\n\"open", b',');
        assert!(bad[0].1.is_err());
        assert_eq!(bad[1], (2, row(&["ok"])));
        assert_eq!(bad[2].0, 3);
        assert!(bad[2].1.is_err());
    }

    #[test]
    fn items_from_records() {
        let header: Vec<String> = ["pk", "n", "b", "other", "empty"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let keys: HashMap<String, ScalarType> = [
            ("pk".to_string(), ScalarType::S),
            ("n".to_string(), ScalarType::N),
            ("b".to_string(), ScalarType::B),
        ]
        .into();
        let fields: Vec<String> = ["k", "1.50", "AQI=", "12", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let item = record_to_item(&header, &fields, &keys).unwrap();
        assert_eq!(item["pk"], AttributeValue::S("k".into()));
        assert_eq!(item["n"], AttributeValue::N(Number::parse("1.5").unwrap()));
        assert_eq!(item["b"], AttributeValue::B(vec![1, 2]));
        assert_eq!(item["other"], AttributeValue::S("12".into()));
        assert!(!item.contains_key("empty"));
        let bad_n: Vec<String> = ["k", "x1", "", "", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            record_to_item(&header, &bad_n, &keys).unwrap_err(),
            "The parameter cannot be converted to a numeric value: x1"
        );
        assert!(record_to_item(&header, &fields[..2], &keys).is_err());
        assert!(CsvOptions::new(';', None).is_ok());
        assert!(CsvOptions::new('x', None).is_err());
    }
}
