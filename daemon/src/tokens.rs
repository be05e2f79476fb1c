//! The partner API's secrets: bearer tokens and webhook signing keys.
//!
//! A token is `quai_` and 64 hex digits (256 random bits from the OS); the
//! spool keeps only its SHA-256, so a copy of the spool lets nobody in.
//! Presented tokens are hashed, looked up by hash, and the stored hash is
//! compared in constant time. These tokens are the partners'; the
//! operators' `[http] token_file` is another door (`http::Token`).

use sha2::{Digest, Sha256};

/// Prefix of a partner token (so a leaked one is recognisable).
pub const TOKEN_PREFIX: &str = "quai_";

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| anyhow::anyhow!("the operating system gave no random bytes: {e}"))?;
    Ok(buf)
}

/// A new token secret: `quai_` + 64 hex digits.
pub fn new_secret() -> anyhow::Result<String> {
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes(32)?)))
}

/// The hash a token is stored and looked up under (lower-case hex).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new webhook signing key, base64 (32 random bytes).
pub fn new_signing_key() -> anyhow::Result<String> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(random_bytes(32)?))
}

/// `Afnor-Signature` of a webhook body: base64 of HMAC-SHA256 over
/// `<timestamp>.<body>` with the subscription's key (the base64 it was
/// given; a key that is not base64 is used as its bytes).
pub fn sign_webhook(signing_key: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(signing_key)
        .unwrap_or_else(|_| signing_key.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    b64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), secret_hash(&b));
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 shape: key "Jefe" (not base64: taken as bytes).
        use base64::Engine;
        let sig = sign_webhook("Jefe", 1, b"x");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(sign_webhook("Jefe", 2, b"x"), sign_webhook("Jefe", 1, b"x"));
    }
}
