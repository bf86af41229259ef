//! Statement text → tokens with byte positions.
//!
//! Invariant: lexing never fails on a character it does not know; it yields an
//! [`Tok::Unknown`] token so the parser reports it as an unexpected token like any other.

/// One token of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An unquoted identifier or keyword (keywords are recognised case-insensitively by the
    /// parser).
    Ident(String),
    /// A `"double quoted"` identifier (`""` inside stands for one `"`).
    Quoted(String),
    /// A `'single quoted'` string literal (`''` inside stands for one `'`).
    Str(String),
    /// A numeric literal, as written.
    Num(String),
    /// Punctuation and operators: `* , . [ ] { } ( ) << >> = <> != < <= > >= + - ? : ;`.
    Punct(&'static str),
    /// A character no token starts with.
    Unknown(char),
    /// An unterminated quoted identifier or string.
    Unterminated,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub pos: usize,
}

const PUNCT: [&str; 24] = [
    "<<", ">>", "<>", "!=", "<=", ">=", "||", "*", ",", ".", "[", "]", "{", "}", "(", ")", "=",
    "<", ">", "+", "-", "?", ":", ";",
];

/// Splits `text` into tokens. Comments (`--` to end of line) and whitespace are skipped.
pub fn lex(text: &str) -> Vec<Spanned> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let pos = i;
        if c == b'\'' || c == b'"' {
            let (tok, next) = quoted(text, i, c);
            out.push(Spanned { tok, pos });
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j] == b'.' && b.get(j + 1).is_none_or(|d| d.is_ascii_digit()) {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
                let mut k = j + 1;
                if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
                    k += 1;
                }
                if k < b.len() && b[k].is_ascii_digit() {
                    while k < b.len() && b[k].is_ascii_digit() {
                        k += 1;
                    }
                    j = k;
                }
            }
            out.push(Spanned {
                tok: Tok::Num(text[i..j].to_owned()),
                pos,
            });
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$') {
                j += 1;
            }
            out.push(Spanned {
                tok: Tok::Ident(text[i..j].to_owned()),
                pos,
            });
            i = j;
            continue;
        }
        if let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) {
            out.push(Spanned {
                tok: Tok::Punct(p),
                pos,
            });
            i += p.len();
            continue;
        }
        // Any other character (possibly multi-byte).
        let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(Spanned {
            tok: Tok::Unknown(ch),
            pos,
        });
        i += ch.len_utf8().max(1);
    }
    out
}

/// Reads a quoted token starting at `start` (the quote); returns it and the offset after it.
fn quoted(text: &str, start: usize, q: u8) -> (Tok, usize) {
    let b = text.as_bytes();
    let mut s = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < b.len() {
        if b[i] == q {
            s.push_str(&text[run..i]);
            if b.get(i + 1) == Some(&q) {
                s.push(q as char);
                i += 2;
                run = i;
                continue;
            }
            let tok = if q == b'\'' {
                Tok::Str(s)
            } else {
                Tok::Quoted(s)
            };
            return (tok, i + 1);
        }
        i += 1;
    }
    (Tok::Unterminated, b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks(r#"SELECT * FROM "t" WHERE a<>'it''s' AND b >= 1.5e3"#),
            vec![
                Tok::Ident("SELECT".into()),
                Tok::Punct("*"),
                Tok::Ident("FROM".into()),
                Tok::Quoted("t".into()),
                Tok::Ident("WHERE".into()),
                Tok::Ident("a".into()),
                Tok::Punct("<>"),
                Tok::Str("it's".into()),
                Tok::Ident("AND".into()),
                Tok::Ident("b".into()),
                Tok::Punct(">="),
                Tok::Num("1.5e3".into()),
            ]
        );
        assert_eq!(
            toks("<<1>>"),
            vec![Tok::Punct("<<"), Tok::Num("1".into()), Tok::Punct(">>")]
        );
        assert_eq!(toks("'abc"), vec![Tok::Unterminated]);
        assert_eq!(toks("é"), vec![Tok::Unknown('é')]);
        assert_eq!(
            toks("a -- comment\n b"),
            vec![Tok::Ident("a".into()), Tok::Ident("b".into())]
        );
    }
}
