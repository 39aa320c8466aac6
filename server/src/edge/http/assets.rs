//! The UI's built files under `/pkg`. `scripts/build-ui.sh` names them after their content
//! (`awoooi.<hash>.js`, `awoooi.<hash>_bg.wasm`, `awoooi.<hash>.css`), writes the hash to
//! `pkg/awoooi.hash`, and puts a brotli (`.br`) and a gzip (`.gz`) copy beside each. They are
//! served precompressed as the request's `Accept-Encoding` allows, and the hashed ones are
//! cached for a year as `immutable`: a new build has new names. Anything else under `/pkg`
//! (an unhashed build) is revalidated on every use.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The bundle's base name, as wasm-bindgen is told to write it.
pub const OUTPUT_NAME: &str = "awoooi";
/// The file, in `pkg/`, holding the content hash of the current build.
pub const HASH_FILE: &str = "awoooi.hash";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Which build of the UI this server hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    /// `awoooi.<hash>` for a hashed build, else `awoooi`: the name the pages load
    /// (`<name>.js`, `<name>_bg.wasm`, `<name>.css`).
    pub output_name: String,
}

impl Assets {
    /// Reads `pkg/awoooi.hash` under `site_root`. A missing file means an unhashed build; a
    /// file that does not hold a hash is reported and treated as missing.
    pub fn load(site_root: &Path) -> Assets {
        let path = site_root.join("pkg").join(HASH_FILE);
        let hash = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let hash = text.trim();
                if is_hash(hash) {
                    Some(hash.to_owned())
                } else {
                    tracing::warn!(
                        file = %path.display(),
                        "not a content hash (8 to 64 lowercase hex digits): serving unhashed UI names"
                    );
                    None
                }
            }
            Err(_) => None,
        };
        Assets::with_hash(hash.as_deref())
    }

    fn with_hash(hash: Option<&str>) -> Assets {
        Assets {
            output_name: match hash {
                Some(hash) => format!("{OUTPUT_NAME}.{hash}"),
                None => OUTPUT_NAME.to_owned(),
            },
        }
    }

    /// Whether `file` (a name under `/pkg`) belongs to this hashed build.
    fn is_immutable(&self, file: &str) -> bool {
        self.output_name != OUTPUT_NAME
            && file
                .strip_prefix(&self.output_name)
                .is_some_and(|rest| matches!(rest, ".js" | "_bg.wasm" | ".css"))
    }
}

fn is_hash(text: &str) -> bool {
    (8..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Sets `Cache-Control` on `/pkg` responses (a year and `immutable` for this build's hashed
/// files, revalidation for the rest) and `Vary: Accept-Encoding`, as the body depends on it.
pub async fn cache_headers(State(assets): State<Assets>, request: Request, next: Next) -> Response {
    let file = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == 304 {
        let headers = response.headers_mut();
        let policy = if assets.is_immutable(&file) {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_names_the_build_and_only_its_files_are_immutable() {
        let hashed = Assets::with_hash(Some("0123abcd4567ef89"));
        assert_eq!(hashed.output_name, "awoooi.0123abcd4567ef89");
        for file in [
            "awoooi.0123abcd4567ef89.js",
            "awoooi.0123abcd4567ef89_bg.wasm",
            "awoooi.0123abcd4567ef89.css",
        ] {
            assert!(hashed.is_immutable(file), "{file}");
        }
        for file in [
            "awoooi.js",
            "awoooi.1111111111111111.js",
            "awoooi.0123abcd4567ef89.hash",
            "favicon.svg",
        ] {
            assert!(!hashed.is_immutable(file), "{file}");
        }
        let unhashed = Assets::with_hash(None);
        assert_eq!(unhashed.output_name, "awoooi");
        assert!(!unhashed.is_immutable("awoooi.js"));
    }

    #[test]
    fn a_hash_file_is_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("awoooi-assets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        assert_eq!(Assets::load(&dir).output_name, "awoooi", "no file");
        std::fs::write(dir.join("pkg").join(HASH_FILE), "0123abcd4567ef89\n").unwrap();
        assert_eq!(Assets::load(&dir).output_name, "awoooi.0123abcd4567ef89");
        for bad in ["../../etc", "ABCDEF0123456789", "abc", ""] {
            std::fs::write(dir.join("pkg").join(HASH_FILE), bad).unwrap();
            assert_eq!(Assets::load(&dir).output_name, "awoooi", "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
