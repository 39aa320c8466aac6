//! HMAC-SHA256 signatures, one signer and one verifier for all of them: `X-Awoooi-Signature`
//! (`sha256=<hex>` of the body: incoming generic alerts and outgoing webhooks) and Slack's
//! request signature (`v0=<hex>` of `v0:<timestamp>:<body>`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(secret: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// `<prefix><hex>` of the HMAC of `parts` (concatenated) under `secret`.
pub fn sign(secret: &str, prefix: &str, parts: &[&[u8]]) -> String {
    format!(
        "{prefix}{}",
        hex::encode(mac(secret, parts).finalize().into_bytes())
    )
}

/// Whether `given` is `<prefix><hex>` of the HMAC of `parts` under `secret`; the digests are
/// compared in constant time.
pub fn verify(secret: &str, prefix: &str, parts: &[&[u8]], given: &str) -> bool {
    let Some(expected) = given
        .trim()
        .strip_prefix(prefix)
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac(secret, parts).verify_slice(&expected).is_ok()
}

/// The `X-Awoooi-Signature` value of `body` under `secret`: `sha256=<hex>`.
pub fn body_signature(secret: &str, body: &[u8]) -> String {
    sign(secret, "sha256=", &[body])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_secret_parts_and_prefix() {
        let signed = sign("k", "v0=", &[b"a", b"b"]);
        assert!(
            verify("k", "v0=", &[b"ab"], &signed),
            "parts are concatenated"
        );
        assert!(verify("k", "v0=", &[b"a", b"b"], &format!(" {signed} ")));
        assert!(!verify("other", "v0=", &[b"ab"], &signed));
        assert!(!verify("k", "v0=", &[b"abc"], &signed));
        assert!(!verify("k", "sha256=", &[b"ab"], &signed));
        assert!(!verify("k", "v0=", &[b"ab"], &signed[..signed.len() - 1]));
        assert!(!verify("k", "v0=", &[b"ab"], "v0=not-hex"));
    }

    #[test]
    fn body_signature_is_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            body_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
