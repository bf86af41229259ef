//! The `wildcard` operator's glob: `*` matches any run of characters (including none), `\*` is
//! a literal star and `\\` a literal backslash. Two `*` in a row are refused (as AWS does).
//!
//! Invariant: matching is linear-backtracking on the last star only, so it is
//! O(text × pattern) at worst and never recurses.

/// A parsed glob: literal runs separated by stars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wildcard {
    /// `tokens[i]` is `None` for a star, `Some(c)` for a literal character.
    tokens: Vec<Option<char>>,
}

impl Wildcard {
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let mut tokens = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => tokens.push(Some(escaped)),
                    _ => {
                        return Err(format!(
                            "wildcard {text:?}: a backslash may only escape '*' or '\\'"
                        ))
                    }
                },
                '*' => {
                    if tokens.last() == Some(&None) {
                        return Err(format!(
                            "wildcard {text:?}: consecutive '*' characters are not allowed"
                        ));
                    }
                    tokens.push(None);
                }
                literal => tokens.push(Some(literal)),
            }
        }
        Ok(Wildcard { tokens })
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0, 0);
        // Where the last star was, and the text position it currently stands for the end of.
        let mut resume: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(None) => {
                    resume = Some((p, t));
                    p += 1;
                }
                Some(Some(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match resume {
                    Some((star, start)) => {
                        p = star + 1;
                        t = start + 1;
                        resume = Some((star, start + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Wildcard::parse(pattern).unwrap().matches(text)
    }

    #[test]
    fn stars_match_any_run() {
        assert!(m("*.png", "photo.png"));
        assert!(m("*.png", ".png"));
        assert!(!m("*.png", "photo.jpg"));
        assert!(m("orders/*/items/*", "orders/7/items/x"));
        assert!(!m("orders/*/items/*", "orders/7/item/x"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exact!"));
        assert!(m("é*ü", "éaü"));
    }

    #[test]
    fn escapes() {
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"a\\*", r"a\anything"));
        assert!(Wildcard::parse(r"a\b").is_err());
        assert!(Wildcard::parse("a\\").is_err());
    }

    #[test]
    fn consecutive_stars_are_refused() {
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse(r"a*\**b").is_ok());
    }
}
