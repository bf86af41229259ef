//! Tokenizer for all expression kinds.
//!
//! Owns: splitting expression text into spanned tokens. Never fails: a character that starts no
//! token becomes a one-character [`Tok::Unknown`] token, which the parser reports as a syntax
//! error with DynamoDB's `token`/`near` wording.
//!
//! Invariants: spans are byte offsets on UTF-8 character boundaries of the source; the token
//! list always ends with exactly one [`Tok::Eof`] whose span is empty at the end of the source.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z][A-Za-z0-9_]*`: attribute name, keyword or function name.
    Ident,
    /// `#[A-Za-z0-9_]+`
    NameRef,
    /// `:[A-Za-z0-9_]+`
    ValueRef,
    /// `[0-9]+` (only meaningful as a list index)
    Number,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    Unknown,
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

pub(crate) fn lex(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        let start = i;
        let word_end = |mut j: usize| {
            while j < bytes.len() && is_word(bytes[j]) {
                j += 1;
            }
            j
        };
        let (kind, end) = match b {
            b'a'..=b'z' | b'A'..=b'Z' => (Tok::Ident, word_end(i + 1)),
            b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                (Tok::Number, j)
            }
            b'#' | b':' if i + 1 < bytes.len() && is_word(bytes[i + 1]) => {
                let kind = if b == b'#' {
                    Tok::NameRef
                } else {
                    Tok::ValueRef
                };
                (kind, word_end(i + 1))
            }
            b'=' => (Tok::Eq, i + 1),
            b'<' if bytes.get(i + 1) == Some(&b'>') => (Tok::Ne, i + 2),
            b'<' if bytes.get(i + 1) == Some(&b'=') => (Tok::Le, i + 2),
            b'<' => (Tok::Lt, i + 1),
            b'>' if bytes.get(i + 1) == Some(&b'=') => (Tok::Ge, i + 2),
            b'>' => (Tok::Gt, i + 1),
            b'(' => (Tok::LParen, i + 1),
            b')' => (Tok::RParen, i + 1),
            b'[' => (Tok::LBracket, i + 1),
            b']' => (Tok::RBracket, i + 1),
            b',' => (Tok::Comma, i + 1),
            b'.' => (Tok::Dot, i + 1),
            b'+' => (Tok::Plus, i + 1),
            b'-' => (Tok::Minus, i + 1),
            _ => {
                // One whole UTF-8 character.
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                (Tok::Unknown, i + len)
            }
        };
        toks.push(Token { kind, start, end });
        i = end;
    }
    toks.push(Token {
        kind: Tok::Eof,
        start: bytes.len(),
        end: bytes.len(),
    });
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens() {
        use Tok::*;
        assert_eq!(kinds("a<>b"), vec![Ident, Ne, Ident, Eof]);
        assert_eq!(kinds("#1a :_ #"), vec![NameRef, ValueRef, Unknown, Eof]);
        assert_eq!(kinds("_123"), vec![Unknown, Number, Eof]);
        assert_eq!(
            kinds("a[12].b"),
            vec![Ident, LBracket, Number, RBracket, Dot, Ident, Eof]
        );
        assert_eq!(kinds("é!"), vec![Unknown, Unknown, Eof]);
    }
}
