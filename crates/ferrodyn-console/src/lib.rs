//! The web console served at `/console`: its static assets, built into the binary with
//! `include_bytes!`, and the one lookup the HTTP front end calls (path → bytes, content type,
//! cache policy, security headers).
//!
//! Invariants:
//! - Static assets only. The console is a client of the public API on the same origin (POST `/`
//!   with `X-Amz-Target`, GET `/metrics`); nothing here reads requests, storage or credentials,
//!   so serving these files needs no authentication and grants nothing.
//! - The lookup is a fixed table: no file system, no path joining, so no traversal.
//! - Every answer carries a Content-Security-Policy that allows only this origin (no inline
//!   scripts or styles, no framing) and `X-Content-Type-Options: nosniff`.

#![forbid(unsafe_code)]

/// Where the console lives on the API listener.
pub const PREFIX: &str = "/console";

/// The Content-Security-Policy sent with every console asset: same origin only, no inline
/// script or style, no plugins, no framing, forms post nowhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
    /// `Cache-Control`: `no-cache` (revalidate every time), since file names carry no content
    /// hash and an upgraded binary must never pair a new page with old modules.
    pub cache_control: &'static str,
}

/// Headers every console answer carries besides `Content-Type` and `Cache-Control`.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! assets {
    ($(($path:literal, $ty:expr)),* $(,)?) => {
        /// Every asset by its path under [`PREFIX`] (without the leading slash).
        const ASSETS: &[(&str, &[u8], &str)] = &[
            $(($path, include_bytes!(concat!("../assets/", $path)), $ty)),*
        ];
    };
}

assets![
    ("index.html", HTML),
    ("console.css", CSS),
    ("favicon.svg", SVG),
    ("js/app.js", JS),
    ("js/dom.js", JS),
    ("js/sha256.js", JS),
    ("js/sigv4.js", JS),
    ("js/api.js", JS),
    ("js/ddbjson.js", JS),
    ("js/prom.js", JS),
    ("js/pages/tables.js", JS),
    ("js/pages/items.js", JS),
    ("js/pages/partiql.js", JS),
    ("js/pages/streams.js", JS),
    ("js/pages/metrics.js", JS),
    ("js/pages/signin.js", JS),
];

/// The asset for a request path (`/console`, `/console/`, `/console/js/app.js`, ...), or `None`
/// if the path is not the console's or names no asset. The query string must be stripped.
pub fn lookup(path: &str) -> Option<Asset> {
    let rest = path.strip_prefix(PREFIX)?;
    let name = match rest {
        "" | "/" | "/index.html" => "index.html",
        _ => rest.strip_prefix('/')?,
    };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == name)
        .map(|&(_, body, content_type)| Asset {
            body,
            content_type,
            cache_control: "no-cache",
        })
}

/// True if `path` belongs to the console (answered by [`lookup`] or a 404 from the console).
pub fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_served_at_the_prefix_with_or_without_a_slash() {
        let page = lookup("/console").unwrap();
        assert_eq!(page.content_type, HTML);
        assert_eq!(lookup("/console/"), Some(page));
        assert_eq!(lookup("/console/index.html"), Some(page));
        assert!(std::str::from_utf8(page.body)
            .unwrap()
            .contains("<title>Ferrodyn console</title>"));
    }

    #[test]
    fn modules_and_styles_have_their_content_types() {
        assert_eq!(lookup("/console/js/app.js").unwrap().content_type, JS);
        assert_eq!(lookup("/console/console.css").unwrap().content_type, CSS);
        assert_eq!(lookup("/console/favicon.svg").unwrap().content_type, SVG);
    }

    #[test]
    fn unknown_and_foreign_paths_are_not_found() {
        for path in [
            "/console/nope.js",
            "/console/../Cargo.toml",
            "/console//js/app.js",
            "/console/js/",
            "/consolex",
            "/",
            "/metrics",
            "/console/package.json",
        ] {
            assert_eq!(lookup(path), None, "{path}");
        }
        assert!(owns("/console") && owns("/console/x"));
        assert!(!owns("/consolex") && !owns("/"));
    }

    #[test]
    fn the_policy_allows_only_this_origin() {
        assert!(CONTENT_SECURITY_POLICY.contains("default-src 'none'"));
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
    }

    /// Every asset is listed, and no listed page references a module that is not: the page
    /// loads only `/console/...` URLs, and every relative `import` resolves to a listed file.
    #[test]
    fn every_import_resolves_to_a_listed_asset() {
        for (path, body, _) in ASSETS {
            let text = std::str::from_utf8(body).unwrap();
            if !path.ends_with(".js") {
                continue;
            }
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines() {
                let line = line.trim();
                if !(line.starts_with("import ") || line.starts_with("} from ")) {
                    continue;
                }
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = format!("/console/{}", parts.join("/"));
                assert!(lookup(&target).is_some(), "{path} imports {spec}");
            }
        }
    }

    /// A file added under `assets/` but not to the table would be missing from the binary.
    #[test]
    fn every_file_under_assets_is_built_in() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    let rel = path
                        .strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    out.push(rel.replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut files = Vec::new();
        walk(&base, &base, &mut files);
        for file in files {
            // Marks the modules as ES modules for the Node unit tests; not served.
            if file == "js/package.json" {
                continue;
            }
            assert!(
                ASSETS.iter().any(|(p, _, _)| *p == file),
                "assets/{file} is not listed in ASSETS"
            );
        }
    }

    #[test]
    fn no_asset_uses_inline_script_or_remote_urls() {
        for (path, body, _) in ASSETS {
            let text = std::str::from_utf8(body).unwrap();
            assert!(!text.contains("innerHTML"), "{path} uses innerHTML");
            // The SVG's XML namespace is a name, not a URL that is fetched.
            let text = text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{path} names a remote URL"
            );
            if path.ends_with(".html") {
                assert!(!text.contains("<script>"), "{path} has an inline script");
                assert!(!text.contains("<style"), "{path} has an inline style sheet");
                assert!(!text.contains("style="), "{path} has an inline style");
                let lower = text.to_ascii_lowercase();
                let handler = lower.match_indices(" on").any(|(i, _)| {
                    let rest = &lower[i + 3..];
                    let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                    name_len > 0 && rest[name_len..].starts_with('=')
                });
                assert!(!handler, "{path} has an inline event handler");
            }
        }
    }

    proptest::proptest! {
        /// Any request path: no panic, and only the console's own paths resolve, always to a
        /// listed file.
        #[test]
        fn lookup_answers_only_for_console_paths(path in "(/console)?(/[a-z./%]{0,12}){0,3}") {
            if let Some(asset) = lookup(&path) {
                proptest::prop_assert!(owns(&path));
                proptest::prop_assert!(ASSETS.iter().any(|(_, body, _)| *body == asset.body));
            }
        }
    }
}
