//! Patterns as policies write them: literal text, the wildcards `*` and `?`, and policy
//! variables such as `${aws:username}` or `${aws:userid, 'anonymous'}` — split into pieces once,
//! at parse time, and matched without allocating.

use super::context::RequestContext;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text matched as is (including text from `${*}`, `${?}` and `${$}`).
    Lit(Box<str>),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
    /// A policy variable: the single value of a context key (lowercase), or the default.
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// How a string in a policy is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (otherwise plain characters).
    pub wildcards: bool,
    /// `${...}` is a policy variable (only in `2012-10-17` documents, and only in elements
    /// that accept them).
    pub variables: bool,
}

/// One pattern, pre-split into pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
    has_vars: bool,
}

impl Pattern {
    pub(crate) fn parse(text: &str, syntax: Syntax) -> Result<Pattern, String> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let flush = |lit: &mut String, pieces: &mut Vec<Piece>| {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(lit).into_boxed_str()));
            }
        };
        while let Some(c) = rest.chars().next() {
            if syntax.variables && rest.starts_with("${") {
                let (piece, used) = parse_variable(rest)?;
                match piece {
                    Piece::Lit(s) => lit.push_str(&s),
                    other => {
                        flush(&mut lit, &mut pieces);
                        pieces.push(other);
                    }
                }
                rest = &rest[used..];
                continue;
            }
            match c {
                '*' if syntax.wildcards => {
                    flush(&mut lit, &mut pieces);
                    // Consecutive stars mean the same as one.
                    if pieces.last() != Some(&Piece::Star) {
                        pieces.push(Piece::Star);
                    }
                }
                '?' if syntax.wildcards => {
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::One);
                }
                _ => lit.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        flush(&mut lit, &mut pieces);
        let has_vars = pieces.iter().any(|p| matches!(p, Piece::Var { .. }));
        Ok(Pattern { pieces, has_vars })
    }

    /// True when every variable of the pattern has a value (or a default) in `ctx`.
    pub(crate) fn resolvable(&self, ctx: &RequestContext) -> bool {
        !self.has_vars
            || self.pieces.iter().all(|p| match p {
                Piece::Var { key, default } => default.is_some() || ctx.single_lower(key).is_some(),
                _ => true,
            })
    }

    /// Matches `text` against the pattern. Variables must be resolvable (see
    /// [`Pattern::resolvable`]); an unresolvable one is read as empty text.
    pub(crate) fn matches(&self, text: &str, ctx: &RequestContext, ignore_case: bool) -> bool {
        glob(&self.pieces, text, ignore_case, |p| match p {
            Piece::Lit(s) => s,
            Piece::Var { key, default } => {
                ctx.single_lower(key).or(default.as_deref()).unwrap_or("")
            }
            Piece::Star | Piece::One => "",
        })
    }
}

/// Parses the variable at the start of `s` (which starts with `${`). Returns the piece and the
/// number of bytes used.
fn parse_variable(s: &str) -> Result<(Piece, usize), String> {
    let body_start = 2;
    // The body ends at the first `}` outside a quoted default.
    let bytes = s.as_bytes();
    let mut i = body_start;
    let mut in_quote = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_quote = !in_quote,
            b'}' if !in_quote => break,
            _ => {}
        }
        i += 1;
    }
    if i >= bytes.len() {
        return Err(format!("unterminated policy variable in '{s}'"));
    }
    let body = &s[body_start..i];
    let used = i + 1;
    let piece = match body {
        "*" => Piece::Lit("*".into()),
        "?" => Piece::Lit("?".into()),
        "$" => Piece::Lit("$".into()),
        _ => {
            let (key, default) = match body.find(',') {
                None => (body.trim(), None),
                Some(comma) => {
                    let key = body[..comma].trim();
                    let d = body[comma + 1..].trim();
                    if d.len() < 2 || !d.starts_with('\'') || !d.ends_with('\'') {
                        return Err(format!(
                            "policy variable '${{{body}}}': the default value must be in single quotes"
                        ));
                    }
                    let inner = &d[1..d.len() - 1];
                    // A quote inside the default is written as two quotes.
                    let mut out = String::with_capacity(inner.len());
                    let mut chars = inner.chars().peekable();
                    while let Some(c) = chars.next() {
                        if c == '\'' {
                            if chars.peek() == Some(&'\'') {
                                chars.next();
                            } else {
                                return Err(format!(
                                    "policy variable '${{{body}}}': a quote in the default value must be doubled"
                                ));
                            }
                        }
                        out.push(c);
                    }
                    (key, Some(out.into_boxed_str()))
                }
            };
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(format!(
                    "policy variable '${{{body}}}' names no context key"
                ));
            }
            Piece::Var {
                key: key.to_ascii_lowercase().into_boxed_str(),
                default,
            }
        }
    };
    Ok((piece, used))
}

fn chars_eq(a: char, b: char, ignore_case: bool) -> bool {
    a == b || (ignore_case && a.to_lowercase().eq(b.to_lowercase()))
}

/// Wildcard matching of `text` against `pieces`, where literal pieces are resolved through
/// `text_of` (so variables need no allocation). Greedy with one backtrack point: the classic
/// algorithm, linear in practice and O(pattern × text) at worst.
pub(crate) fn glob<'p, F>(pieces: &'p [Piece], text: &str, ignore_case: bool, text_of: F) -> bool
where
    F: Fn(&'p Piece) -> &'p str,
{
    let (mut p, mut off, mut t) = (0usize, 0usize, 0usize);
    // (piece after the last star, text position that star is currently extended to)
    let mut star: Option<(usize, usize)> = None;
    // The text of the literal or variable piece being matched, resolved once per piece.
    let mut cached: (usize, &str) = (usize::MAX, "");
    loop {
        let advanced = if p < pieces.len() {
            match &pieces[p] {
                Piece::Star => {
                    star = Some((p + 1, t));
                    p += 1;
                    off = 0;
                    continue;
                }
                Piece::One => match text[t..].chars().next() {
                    Some(c) => {
                        t += c.len_utf8();
                        p += 1;
                        off = 0;
                        true
                    }
                    None => false,
                },
                piece => {
                    if cached.0 != p {
                        cached = (p, text_of(piece));
                    }
                    let lit = cached.1;
                    if off >= lit.len() {
                        p += 1;
                        off = 0;
                        continue;
                    }
                    // Fast path: the rest of the literal at once (a mismatch anywhere in it
                    // backtracks exactly as a mismatch of its first differing character would).
                    let want = &lit[off..];
                    let rest = &text[t..];
                    if want.len() <= rest.len() && rest.is_char_boundary(want.len()) {
                        let got = &rest[..want.len()];
                        let whole = if ignore_case {
                            (want.is_ascii() && got.is_ascii())
                                .then(|| want.eq_ignore_ascii_case(got))
                        } else {
                            Some(want == got)
                        };
                        match whole {
                            Some(true) => {
                                t += want.len();
                                p += 1;
                                off = 0;
                                continue;
                            }
                            Some(false) if !ignore_case => false,
                            _ => char_step(lit, &mut off, text, &mut t, ignore_case),
                        }
                    } else if !ignore_case {
                        false
                    } else {
                        char_step(lit, &mut off, text, &mut t, ignore_case)
                    }
                }
            }
        } else if t == text.len() {
            return true;
        } else {
            false
        };
        if advanced {
            continue;
        }
        // Mismatch: let the last star swallow one more character, or fail.
        match star {
            Some((sp, st)) => match text[st..].chars().next() {
                Some(c) => {
                    let st = st + c.len_utf8();
                    star = Some((sp, st));
                    p = sp;
                    off = 0;
                    t = st;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// One character of a literal against one of the text; advances both on a match.
fn char_step(lit: &str, off: &mut usize, text: &str, t: &mut usize, ignore_case: bool) -> bool {
    let want = lit[*off..].chars().next();
    let got = text[*t..].chars().next();
    match (want, got) {
        (Some(w), Some(g)) if chars_eq(w, g, ignore_case) => {
            *off += w.len_utf8();
            *t += g.len_utf8();
            true
        }
        _ => false,
    }
}

/// An ARN pattern (Resource and NotResource entries, Arn* condition values): the first five
/// colon-separated parts of the pattern are matched one by one against the same parts of the
/// ARN; the last part of the pattern matches the rest of the ARN, colons included. So `*`
/// matches any ARN, `arn:aws:dynamodb:*:*:table/*` matches any table (and its indexes), and a
/// wildcard in the region part never spans into the account part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArnPattern {
    parts: Vec<Pattern>,
}

impl ArnPattern {
    /// True when a part holds a policy variable (matching it reads the request context).
    pub(crate) fn has_vars(&self) -> bool {
        self.parts.iter().any(|p| p.has_vars)
    }

    pub(crate) fn parse(text: &str, variables: bool) -> Result<ArnPattern, String> {
        let syntax = Syntax {
            wildcards: true,
            variables,
        };
        let mut parts = Vec::new();
        let mut start = 0;
        let mut depth_var = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() && parts.len() < 5 {
            if variables && !depth_var && bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
                depth_var = true;
            } else if depth_var && bytes[i] == b'}' {
                depth_var = false;
            } else if !depth_var && bytes[i] == b':' {
                parts.push(Pattern::parse(&text[start..i], syntax)?);
                start = i + 1;
            }
            i += 1;
        }
        parts.push(Pattern::parse(&text[start..], syntax)?);
        Ok(ArnPattern { parts })
    }

    pub(crate) fn resolvable(&self, ctx: &RequestContext) -> bool {
        self.parts.iter().all(|p| p.resolvable(ctx))
    }

    pub(crate) fn matches(&self, arn: &str, ctx: &RequestContext) -> bool {
        let mut segments = arn.splitn(self.parts.len(), ':');
        for part in &self.parts {
            match segments.next() {
                Some(seg) => {
                    if !part.matches(seg, ctx, false) {
                        return false;
                    }
                }
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOB: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn m(pat: &str, text: &str) -> bool {
        Pattern::parse(pat, GLOB)
            .unwrap()
            .matches(text, &RequestContext::default(), false)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("Get*", "GetItem"));
        assert!(!m("Get*", "PutItem"));
        assert!(m("*Item", "GetItem"));
        assert!(m("G?tItem", "GetItem"));
        assert!(!m("G?tItem", "GtItem"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a**?", "ab"));
        assert!(m("??", "éé"));
        assert!(!m("?", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn special_variables_are_literal() {
        assert!(m("a${*}b", "a*b"));
        assert!(!m("a${*}b", "axb"));
        assert!(m("${?}", "?"));
        assert!(!m("${?}", "x"));
        assert!(m("${$}{x}", "${x}"));
    }

    #[test]
    fn variables() {
        let p = Pattern::parse("home/${aws:username}/*", GLOB).unwrap();
        let mut ctx = RequestContext::default();
        assert!(!p.resolvable(&ctx));
        ctx.set("AWS:UserName", "alice");
        assert!(p.resolvable(&ctx));
        assert!(p.matches("home/alice/x", &ctx, false));
        assert!(!p.matches("home/bob/x", &ctx, false));
        // Substituted text is literal: a star in the value is no wildcard.
        ctx.set("aws:username", "a*");
        assert!(!p.matches("home/abc/x", &ctx, false));
        assert!(p.matches("home/a*/x", &ctx, false));
        let d = Pattern::parse("${aws:userid, 'anon''s'}", GLOB).unwrap();
        let empty = RequestContext::default();
        assert!(d.resolvable(&empty));
        assert!(d.matches("anon's", &empty, false));
        let sp = Pattern::parse("${ aws:userid ,  'x' }", GLOB).unwrap();
        assert!(sp.matches("x", &empty, false));
    }

    #[test]
    fn malformed_variables() {
        assert!(Pattern::parse("${aws:username", GLOB).is_err());
        assert!(Pattern::parse("${}", GLOB).is_err());
        assert!(Pattern::parse("${aws:userid, anonymous}", GLOB).is_err());
        // Without variable syntax it is all text.
        let lit = Syntax {
            wildcards: false,
            variables: false,
        };
        let p = Pattern::parse("${aws:username*", lit).unwrap();
        assert!(p.matches("${aws:username*", &RequestContext::default(), false));
    }

    #[test]
    fn arns() {
        let ctx = RequestContext::default();
        let t = "arn:aws:dynamodb:us-east-1:123456789012:table/Books";
        let a = |p: &str| ArnPattern::parse(p, true).unwrap().matches(t, &ctx);
        assert!(a("*"));
        assert!(a(t));
        assert!(a("arn:aws:dynamodb:*:*:table/*"));
        assert!(a("arn:aws:dynamodb:us-east-?:123456789012:table/Books"));
        assert!(a("arn:aws:dynamodb:*"));
        assert!(!a("arn:aws:dynamodb:*:table/Books"));
        assert!(!a("arn:aws:dynamodb:us-east-1:123456789012:table/books"));
        assert!(!a("arn:aws:dynamodb:us-east-1:123456789012:table/Book"));
        let idx = "arn:aws:dynamodb:us-east-1:123456789012:table/Books/index/ByAuthor";
        assert!(
            ArnPattern::parse("arn:aws:dynamodb:*:*:table/Books/*", true)
                .unwrap()
                .matches(idx, &ctx)
        );
        assert!(!ArnPattern::parse("arn:aws:dynamodb:*:*:table/Books", true)
            .unwrap()
            .matches(idx, &ctx));
        // The resource part may hold colons.
        assert!(ArnPattern::parse("arn:aws:x:r:a:thing:*", true)
            .unwrap()
            .matches("arn:aws:x:r:a:thing:1:2", &ctx));
    }
}
