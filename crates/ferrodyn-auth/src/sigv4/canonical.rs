//! The canonical request of Signature Version 4, computed the way AWS computes it for services
//! other than S3: the path normalized (RFC 3986 dot segments removed, empty segments dropped) and
//! percent-encoded once more as received, the query decoded and re-encoded with RFC 3986's
//! unreserved set and sorted by encoded name then value, header names lowercased and values
//! trimmed with inner runs of spaces collapsed, repeated headers joined with `,`.

use sha2::{Digest, Sha256};

/// One query parameter, percent-decoded (`+` read as a space, as form decoding does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryParam {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; a `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(s: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_as_space && c == b'+' { b' ' } else { c });
        i += 1;
    }
    out
}

/// Splits a raw query string (without `?`) into decoded parameters, in order. Empty pieces
/// (`a=1&&b=2`) are skipped; a piece without `=` has an empty value.
pub(crate) fn parse_query(query: &str) -> Vec<QueryParam> {
    query
        .as_bytes()
        .split(|&c| c == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&c| c == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &piece[piece.len()..]),
            };
            QueryParam {
                name: percent_decode(name, true),
                value: percent_decode(value, true),
            }
        })
        .collect()
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 encoding: everything but unreserved characters (and `/` when `keep_slash`) becomes
/// `%XX` with upper-case hex digits.
pub(crate) fn uri_encode(s: &[u8], keep_slash: bool, out: &mut Vec<u8>) {
    for &c in s {
        if is_unreserved(c) || (keep_slash && c == b'/') {
            out.push(c);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(c >> 4)],
                HEX_UPPER[usize::from(c & 0xf)],
            ]);
        }
    }
}

/// The canonical query string: every parameter but those `exclude` names, encoded, sorted by
/// encoded name then encoded value, joined with `&`.
#[cfg(test)]
pub(crate) fn canonical_query(params: &[QueryParam], exclude: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    canonical_query_into(params, exclude, &mut out);
    out
}

/// [`canonical_query`], appended to `out`.
fn canonical_query_into(params: &[QueryParam], exclude: Option<&[u8]>, out: &mut Vec<u8>) {
    if params.is_empty() {
        return;
    }
    let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = params
        .iter()
        .filter(|p| Some(p.name.as_slice()) != exclude)
        .map(|p| {
            let mut n = Vec::with_capacity(p.name.len());
            uri_encode(&p.name, false, &mut n);
            let mut v = Vec::with_capacity(p.value.len());
            uri_encode(&p.value, false, &mut v);
            (n, v)
        })
        .collect();
    encoded.sort();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(n);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// Removes dot segments and empty segments from an absolute path, keeping a trailing slash.
fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&c| c == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = Vec::with_capacity(path.len() + 1);
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    let trailing = [&b"/"[..], b"/.", b"/..", b"/./", b"/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push(b'/');
    }
    out
}

/// The canonical URI: the raw (still percent-encoded) path normalized and encoded once more,
/// as AWS does for every service but S3.
#[cfg(test)]
pub(crate) fn canonical_uri(raw_path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    canonical_uri_into(raw_path, &mut out);
    out
}

/// [`canonical_uri`], appended to `out`.
fn canonical_uri_into(raw_path: &str, out: &mut Vec<u8>) {
    // `/` (and the empty path) normalize to `/`, which encodes to itself: the usual case.
    if raw_path.is_empty() || raw_path == "/" {
        out.push(b'/');
        return;
    }
    let normalized = normalize_path(raw_path.as_bytes());
    uri_encode(&normalized, true, out);
}

/// Where canonical text goes: a buffer on the stack (the normal path, hashed once whole, and
/// shown as it is in a mismatch error) or a vector (tests).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);

    /// One byte (the canonical text's separators): no copy routine for a single byte.
    fn put_byte(&mut self, byte: u8) {
        self.put(&[byte]);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// Text gathered on the stack, up to `N` bytes, then on the heap: the canonical request and the
/// string to sign are gathered whole, then hashed in one call (see `prefix`).
pub(crate) struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Everything, once more than `N` bytes came.
    spilled: Option<Vec<u8>>,
}

impl<const N: usize> StackText<N> {
    pub(crate) fn new() -> Self {
        StackText {
            buf: [0; N],
            len: 0,
            spilled: None,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.spilled {
            Some(v) => v,
            None => &self.buf[..self.len],
        }
    }
}

impl<const N: usize> Sink for StackText<N> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if let Some(v) = &mut self.spilled {
            v.extend_from_slice(bytes);
        } else if bytes.len() <= N - self.len {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            let mut v = Vec::with_capacity(2 * N + bytes.len());
            v.extend_from_slice(&self.buf[..self.len]);
            v.extend_from_slice(bytes);
            self.spilled = Some(v);
        }
    }

    #[inline]
    fn put_byte(&mut self, byte: u8) {
        match &mut self.spilled {
            None if self.len < N => {
                self.buf[self.len] = byte;
                self.len += 1;
            }
            _ => self.put(&[byte]),
        }
    }
}

/// The first of two adjacent spaces in `s`.
fn double_space(s: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b' ', s).find(|&at| s.get(at + 1) == Some(&b' '))
}

/// A header value as it enters the canonical request: spaces and tabs trimmed at both ends,
/// inner runs of spaces collapsed to one.
pub(crate) fn canonical_header_value<S: Sink + ?Sized>(value: &[u8], out: &mut S) {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = value.iter().position(|c| !is_ws(c)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|c| !is_ws(c))
        .map_or(start, |e| e + 1);
    let mut rest = &value[start..end];
    // Most values hold no run of spaces: one pass without early exit (vector instructions)
    // tells, and the value goes in whole.
    let runs = rest
        .iter()
        .zip(rest.get(1..).unwrap_or_default())
        .fold(false, |run, (a, b)| run | ((*a == b' ') & (*b == b' ')));
    if !runs {
        out.put(rest);
        return;
    }
    // Each run of spaces: the text before it and one space, then past the run.
    while let Some(at) = double_space(rest) {
        out.put(&rest[..=at]);
        let run = rest[at..].iter().take_while(|&&c| c == b' ').count();
        rest = &rest[at + run..];
    }
    out.put(rest);
}

/// Orders header names as their lowercase forms order.
fn cmp_ignore_ascii_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The signed header names in canonical order (as their lowercase forms sort), unique without
/// regard to case.
pub(crate) enum SignedHeaders<'a> {
    /// Sent canonical already (lowercase, sorted, unique, none empty), as every SDK sends them:
    /// used as they are.
    Canonical(&'a str),
    /// Sorted and deduplicated here, still in the case they were sent; lowercased on output.
    Sorted(Vec<&'a str>),
}

impl<'a> SignedHeaders<'a> {
    fn for_each(&self, mut f: impl FnMut(&'a str)) {
        match self {
            SignedHeaders::Canonical(list) => super::split_ascii(list, b';').for_each(f),
            SignedHeaders::Sorted(names) => names.iter().for_each(|n| f(n)),
        }
    }
}

/// Whether a SignedHeaders value is canonical as sent: non-empty lowercase names in strictly
/// ascending order.
fn is_canonical(list: &str) -> bool {
    // One pass for case, without early exit (vector instructions), then the order.
    if list
        .bytes()
        .fold(false, |upper, c| upper | c.is_ascii_uppercase())
    {
        return false;
    }
    let mut previous: Option<&str> = None;
    super::split_ascii(list, b';').all(|name| {
        let ok = !name.is_empty() && previous.is_none_or(|p| p < name);
        previous = Some(name);
        ok
    })
}

pub(crate) fn signed_header_list(signed_headers: &str) -> SignedHeaders<'_> {
    if is_canonical(signed_headers) {
        return SignedHeaders::Canonical(signed_headers);
    }
    let mut names: Vec<&str> = Vec::with_capacity(8);
    names.extend(signed_headers.split(';').filter(|n| !n.is_empty()));
    names.sort_unstable_by(|a, b| cmp_ignore_ascii_case(a, b));
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    SignedHeaders::Sorted(names)
}

/// The signed header names as they enter the canonical request: lowercased, sorted, unique.
#[cfg(test)]
pub(crate) fn signed_header_names(signed_headers: &str) -> Vec<String> {
    let mut out = Vec::new();
    signed_header_list(signed_headers).for_each(|n| out.push(n.to_ascii_lowercase()));
    out
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// The two lowercase hex digits of every byte: one load per byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = [HEX_LOWER[b >> 4], HEX_LOWER[b & 0xf]];
        b += 1;
    }
    table
};

/// Lowercase hex of a 32-byte digest.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    out
}

/// The SHA-256 of `data` in lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex32(&Sha256::digest(data).into())
}

/// Everything the canonical request is made of.
pub(crate) struct CanonicalInput<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [QueryParam],
    /// A query parameter name left out (`X-Amz-Signature` for presigned requests).
    pub exclude_param: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub signed_headers: &'a SignedHeaders<'a>,
    pub payload_hash: &'a [u8],
}

fn put_lowercase<S: Sink + ?Sized>(out: &mut S, s: &str) {
    if s.bytes().any(|c| c.is_ascii_uppercase()) {
        out.put(s.to_ascii_lowercase().as_bytes());
    } else {
        out.put(s.as_bytes());
    }
}

/// Writes the canonical request to `out`. Signed headers absent from the request enter with an
/// empty value (so the signature cannot match unless the client signed them absent the same
/// way).
pub(crate) fn canonical_request_to<S: Sink + ?Sized>(input: &CanonicalInput<'_>, out: &mut S) {
    out.put(input.method.as_bytes());
    out.put_byte(b'\n');
    if input.path.is_empty() || input.path == "/" {
        // `/` (and the empty path) normalize to `/`, which encodes to itself: the usual case.
        out.put_byte(b'/');
    } else {
        let mut uri = Vec::with_capacity(input.path.len() + 8);
        canonical_uri_into(input.path, &mut uri);
        out.put(&uri);
    }
    out.put_byte(b'\n');
    if !input.query.is_empty() {
        let mut query = Vec::new();
        canonical_query_into(input.query, input.exclude_param, &mut query);
        out.put(&query);
    }
    out.put_byte(b'\n');
    // A canonical list's names are lowercase already.
    let lowercase = matches!(input.signed_headers, SignedHeaders::Canonical(_));
    input.signed_headers.for_each(|name| {
        if lowercase {
            out.put(name.as_bytes());
        } else {
            put_lowercase(out, name);
        }
        out.put_byte(b':');
        let mut first = true;
        for (_, value) in input
            .headers
            .iter()
            // Names arrive lowercase from HTTP/1 parsers: the exact comparison nearly always
            // decides.
            .filter(|(n, _)| *n == name || n.eq_ignore_ascii_case(name))
        {
            if !first {
                out.put_byte(b',');
            }
            canonical_header_value(value, out);
            first = false;
        }
        out.put_byte(b'\n');
    });
    out.put_byte(b'\n');
    match input.signed_headers {
        SignedHeaders::Canonical(list) => out.put(list.as_bytes()),
        SignedHeaders::Sorted(names) => {
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.put_byte(b';');
                }
                put_lowercase(out, name);
            }
        }
    }
    out.put_byte(b'\n');
    out.put(input.payload_hash);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cq(q: &str) -> String {
        String::from_utf8(canonical_query(&parse_query(q), None)).unwrap()
    }

    fn hv(v: &str) -> String {
        let mut out = Vec::new();
        canonical_header_value(v.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn query_is_decoded_reencoded_and_sorted() {
        assert_eq!(cq(""), "");
        assert_eq!(cq("b=2&a=1"), "a=1&b=2");
        assert_eq!(cq("a=2&a=1&A=3"), "A=3&a=1&a=2");
        assert_eq!(cq("flag&x="), "flag=&x=");
        assert_eq!(cq("k=a%20b+c"), "k=a%20b%20c");
        assert_eq!(cq("k=%7e%2f%3D"), "k=~%2F%3D");
        assert_eq!(cq("k=%E1%88%B4"), "k=%E1%88%B4");
        assert_eq!(cq("k=%zz%4"), "k=%25zz%254");
        assert_eq!(cq("a=1&&b=2&"), "a=1&b=2");
        assert_eq!(cq("-._~=-._~"), "-._~=-._~");
    }

    #[test]
    fn paths_are_normalized_then_encoded_again() {
        let u = |p: &str| String::from_utf8(canonical_uri(p)).unwrap();
        assert_eq!(u(""), "/");
        assert_eq!(u("/"), "/");
        assert_eq!(u("//example//"), "/example/");
        assert_eq!(u("/example/.."), "/");
        assert_eq!(u("/example/../.."), "/");
        assert_eq!(u("/./"), "/");
        assert_eq!(u("/./example"), "/example");
        assert_eq!(u("/a/b/./c/../d/"), "/a/b/d/");
        assert_eq!(u("/example%20space/"), "/example%2520space/");
        assert_eq!(u("/test/@connections/x%3D"), "/test/%40connections/x%253D");
        assert_eq!(u("relative"), "/relative");
    }

    #[test]
    fn header_values_trimmed_and_collapsed() {
        assert_eq!(hv("value1"), "value1");
        assert_eq!(hv("  value1  "), "value1");
        assert_eq!(hv("\t\"a   b   c\" "), "\"a b c\"");
        assert_eq!(hv("a \t b"), "a \t b");
        assert_eq!(hv("   "), "");
        assert_eq!(hv(""), "");
    }

    #[test]
    fn signed_header_list() {
        assert_eq!(
            signed_header_names("X-Amz-Date;host;;Host;content-type"),
            ["content-type", "host", "x-amz-date"]
        );
        assert!(signed_header_names("").is_empty());
    }

    #[test]
    fn percent_decoding_edges() {
        assert_eq!(percent_decode(b"%", false), b"%");
        assert_eq!(percent_decode(b"%4", false), b"%4");
        assert_eq!(percent_decode(b"%41", false), b"A");
        assert_eq!(percent_decode(b"a+b", false), b"a+b");
        assert_eq!(percent_decode(b"a+b", true), b"a b");
        assert_eq!(percent_decode(b"%ff%FF", false), [0xff, 0xff]);
    }

    #[test]
    fn canonical_lists_are_used_as_sent_others_sorted() {
        assert!(matches!(
            super::signed_header_list("content-type;host;x-amz-date"),
            SignedHeaders::Canonical(_)
        ));
        for odd in ["host;content-type", "Host", "a;;b", "a;a", ""] {
            assert!(
                matches!(super::signed_header_list(odd), SignedHeaders::Sorted(_)),
                "{odd}"
            );
        }
    }

    /// The canonical request of a few headers, written to a buffer.
    fn canonical(signed: &str, headers: &[(&str, &[u8])]) -> Vec<u8> {
        let list = super::signed_header_list(signed);
        let input = CanonicalInput {
            method: "POST",
            path: "/",
            query: &[],
            exclude_param: None,
            headers,
            signed_headers: &list,
            payload_hash: b"e3b0",
        };
        let mut out = Vec::new();
        canonical_request_to(&input, &mut out);
        out
    }

    proptest::proptest! {
        #[test]
        fn stack_text_keeps_every_byte_in_order(
            pieces in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..300), 0..20)
        ) {
            let mut text = StackText::<256>::new();
            let mut whole = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                if i % 3 == 0 {
                    text.put_byte(b':');
                    whole.push(b':');
                }
                text.put(p);
                whole.extend_from_slice(p);
            }
            proptest::prop_assert_eq!(text.as_bytes(), &whole[..]);
        }

        #[test]
        fn header_values_canonicalize_as_trim_and_collapse(value in "[ \ta-c]{0,30}") {
            let mut out = Vec::new();
            canonical_header_value(value.as_bytes(), &mut out);
            let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
            let mut expected = String::new();
            let mut after_space = false;
            for c in trimmed.chars() {
                if c == ' ' && after_space {
                    continue;
                }
                after_space = c == ' ';
                expected.push(c);
            }
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }

        #[test]
        fn a_list_sent_canonical_or_not_gives_one_canonical_request(
            names in proptest::collection::btree_set("[a-z][a-z0-9-]{0,12}", 1..8),
            upper in proptest::collection::vec(proptest::bool::ANY, 8),
            value in "[ -~]{0,20}",
        ) {
            let sorted: Vec<&str> = names.iter().map(String::as_str).collect();
            let headers: Vec<(&str, &[u8])> =
                sorted.iter().map(|n| (*n, value.as_bytes())).collect();
            let canonical_list = sorted.join(";");
            // The same names reversed, some in upper case, one repeated.
            let mut odd: Vec<String> = sorted
                .iter()
                .rev()
                .zip(upper.iter().cycle())
                .map(|(n, up)| if *up { n.to_ascii_uppercase() } else { (*n).to_owned() })
                .collect();
            odd.push(sorted[0].to_owned());
            let odd_list = odd.join(";");
            proptest::prop_assert_eq!(
                canonical(&canonical_list, &headers),
                canonical(&odd_list, &headers)
            );
        }

        #[test]
        fn split_ascii_agrees_with_str_split(s in "[a-z;/ ]{0,30}") {
            let ours: Vec<&str> = super::super::split_ascii(&s, b';').collect();
            let std: Vec<&str> = s.split(';').collect();
            proptest::prop_assert_eq!(ours, std);
        }

        #[test]
        fn header_values_collapse_like_a_character_loop(v in "[ a\\t]{0,24}") {
            let mut ours = Vec::new();
            canonical_header_value(v.as_bytes(), &mut ours);
            let trimmed = v.trim_matches(|c| c == ' ' || c == '\t');
            let mut expected = String::new();
            for c in trimmed.chars() {
                if !(c == ' ' && expected.ends_with(' ')) {
                    expected.push(c);
                }
            }
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), expected);
        }
    }
}
