//! The S/MIME layers of an AS2 message: CMS EnvelopedData (decryption),
//! detached and opaque PKCS #7 signatures (verification, and signing our
//! MDNs), RFC 3274/5402 CompressedData, and MIC digests.
//!
//! Signatures are verified against the partner's configured certificate
//! exactly: the signer must be that certificate (matched by issuer and serial
//! number, certificates embedded in the message are ignored) and no trust
//! chain is required, since AS2 partners commonly exchange self-signed
//! certificates out of band.
//!
//! CompressedData is parsed here rather than by OpenSSL because OpenSSL
//! builds without zlib (Debian's among them) cannot decompress it; the DER/BER
//! structure is small and the content is inflated with flate2, bounded by a
//! caller-given maximum so a compression bomb stops early.

use std::io::Read;

use openssl::hash::{Hasher, MessageDigest};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

/// Why an S/MIME layer could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmimeError {
    #[error("decryption failed: {0}")]
    Decryption(String),
    /// The content does not match the signature (it was altered).
    #[error("content does not match its signature: {0}")]
    Integrity(String),
    /// The signature is not the partner's (unknown signer, wrong key, bad
    /// signature structure).
    #[error("signature not verified with the partner's certificate: {0}")]
    Authentication(String),
    #[error("decompression failed: {0}")]
    Decompression(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("encryption failed: {0}")]
    Encryption(String),
}

/// Decrypt CMS EnvelopedData (DER) with our key and certificate.
pub fn decrypt(der: &[u8], key: &PKey<Private>, cert: &X509) -> Result<Vec<u8>, SmimeError> {
    let cms = openssl::cms::CmsContentInfo::from_der(der)
        .map_err(|e| SmimeError::Decryption(format!("not a CMS structure: {}", short(&e))))?;
    cms.decrypt(key, cert)
        .map_err(|e| SmimeError::Decryption(short(&e)))
}

/// Verify a detached signature (DER SignedData) over `content` with exactly
/// the partner's certificate.
pub fn verify_detached(
    signature_der: &[u8],
    content: &[u8],
    partner: &X509,
) -> Result<(), SmimeError> {
    refuse_unknown_digests(signature_der)?;
    let p7 = Pkcs7::from_der(signature_der)
        .map_err(|e| SmimeError::Authentication(format!("unreadable signature: {}", short(&e))))?;
    verify_with(&p7, Some(content), None, partner)
}

/// OpenSSL (3.0, both PKCS7_verify and CMS_verify) leaks a few hundred bytes
/// each time it is asked to verify a signature naming a digest algorithm it
/// does not know: found by fuzzing, repeatable by any sender. Such a
/// signature is refused here, before OpenSSL sees it. DER with definite
/// lengths is walked; anything else is left to OpenSSL.
fn refuse_unknown_digests(der: &[u8]) -> Result<(), SmimeError> {
    match signature_digest_oids(der) {
        Some(oids) => {
            for oid in oids {
                if !KNOWN_DIGESTS.contains(&oid) {
                    return Err(SmimeError::Authentication(
                        "the signature uses an unknown digest algorithm".to_string(),
                    ));
                }
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// DER contents of the digest OIDs quai accepts: MD5, SHA-1, SHA-224/256/384/512.
const KNOWN_DIGESTS: &[&[u8]] = &[
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05],
    &[0x2b, 0x0e, 0x03, 0x02, 0x1a],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
    &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
];

/// One DER element: (tag, contents, rest). None on indefinite or bad lengths.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value's contents.
fn der_children(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = der_next(contents)?;
        out.push((tag, value));
        contents = rest;
    }
    Some(out)
}

/// The OID of an AlgorithmIdentifier's contents.
fn algorithm_oid(alg: &[u8]) -> Option<&[u8]> {
    let (tag, oid, _) = der_next(alg)?;
    (tag == 0x06).then_some(oid)
}

/// Digest OIDs named by a ContentInfo(SignedData): its digestAlgorithms and
/// each SignerInfo's digestAlgorithm.
fn signature_digest_oids(der: &[u8]) -> Option<Vec<&[u8]>> {
    let (tag, content_info, _) = der_next(der)?;
    if tag != 0x30 {
        return None;
    }
    let ci = der_children(content_info)?;
    let (_, explicit) = ci.iter().find(|(t, _)| *t == 0xa0)?;
    let (tag, signed_data, _) = der_next(explicit)?;
    if tag != 0x30 {
        return None;
    }
    let sd = der_children(signed_data)?;
    let mut oids = Vec::new();
    // digestAlgorithms: the SET after the version.
    let (tag, algs) = sd.get(1)?;
    if *tag != 0x31 {
        return None;
    }
    for (t, alg) in der_children(algs)? {
        if t == 0x30 {
            oids.push(algorithm_oid(alg)?);
        }
    }
    // signerInfos: the last SET.
    let (tag, infos) = sd.last()?;
    if *tag != 0x31 {
        return None;
    }
    for (t, info) in der_children(infos)? {
        if t != 0x30 {
            continue;
        }
        let fields = der_children(info)?;
        let (t, alg) = fields.get(2)?;
        if *t == 0x30 {
            oids.push(algorithm_oid(alg)?);
        }
    }
    Some(oids)
}

/// Verify opaque SignedData (content inside) and return the content.
pub fn verify_opaque(der: &[u8], partner: &X509) -> Result<Vec<u8>, SmimeError> {
    let p7 = Pkcs7::from_der(der)
        .map_err(|e| SmimeError::Authentication(format!("unreadable signature: {}", short(&e))))?;
    let mut out = Vec::new();
    verify_with(&p7, None, Some(&mut out), partner)?;
    Ok(out)
}

fn verify_with(
    p7: &Pkcs7,
    content: Option<&[u8]>,
    out: Option<&mut Vec<u8>>,
    partner: &X509,
) -> Result<(), SmimeError> {
    let internal = |e: openssl::error::ErrorStack| SmimeError::Authentication(short(&e));
    let mut certs = Stack::new().map_err(internal)?;
    certs.push(partner.clone()).map_err(internal)?;
    let store = X509StoreBuilder::new().map_err(internal)?.build();
    let flags = Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN | Pkcs7Flags::BINARY;
    p7.verify(&certs, &store, content, out, flags).map_err(|e| {
        let text = short(&e);
        // OpenSSL reports a content/digest mismatch as "digest failure"; any
        // other failure (signer not found, bad signature value) means the
        // signature is not the partner's.
        if e.errors().iter().any(|r| {
            r.reason()
                .is_some_and(|s| s.to_ascii_lowercase().contains("digest failure"))
        }) {
            SmimeError::Integrity(text)
        } else {
            SmimeError::Authentication(text)
        }
    })
}

/// Sign `content` with our key, detached, returning DER SignedData.
/// The digest is the key's default (SHA-256 for RSA on OpenSSL 3); the
/// `micalg` to announce is [`SIGNING_MICALG`].
pub fn sign_detached(
    content: &[u8],
    cert: &X509,
    key: &PKey<Private>,
) -> Result<Vec<u8>, SmimeError> {
    let err = |e: openssl::error::ErrorStack| SmimeError::Signing(short(&e));
    let certs = Stack::new().map_err(err)?;
    let p7 = Pkcs7::sign(
        cert,
        key,
        &certs,
        content,
        Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY,
    )
    .map_err(err)?;
    p7.to_der().map_err(err)
}

/// The `micalg` of signatures made by [`sign_detached`].
pub const SIGNING_MICALG: &str = "sha-256";

/// Sign `content` with our key, detached, with the given digest, returning
/// DER SignedData. SHA-256 goes through OpenSSL's PKCS7_sign (its default
/// for RSA keys); OpenSSL's Rust binding cannot choose another digest, so
/// for the others the SignedData is assembled here (RFC 5652 §5: one
/// SignerInfo with the contentType, signingTime and messageDigest signed
/// attributes, an RSA PKCS #1 v1.5 signature, our certificate included).
/// Both forms verify with OpenSSL and with pyas2lib.
pub fn sign_detached_with(
    content: &[u8],
    cert: &X509,
    key: &PKey<Private>,
    alg: &MicAlg,
) -> Result<Vec<u8>, SmimeError> {
    if alg.digest == DigestKind::Sha256 {
        return sign_detached(content, cert, key);
    }
    let err = |e: openssl::error::ErrorStack| SmimeError::Signing(short(&e));
    if key.rsa().is_err() {
        return Err(SmimeError::Signing(format!(
            "signing with {} needs an RSA key (only sha-256 is available for other key types)",
            alg.micalg()
        )));
    }
    let md = alg.message_digest();
    let digest = openssl::hash::hash(md, content).map_err(err)?;
    let digest_alg = der(0x30, &[der(0x06, alg.oid()), vec![0x05, 0x00]].concat());
    let oid_data = der(0x06, OID_DATA);
    let now = utc_time_now();
    let mut attrs = [
        // contentType
        der(
            0x30,
            &[
                der(
                    0x06,
                    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03],
                ),
                der(0x31, &oid_data),
            ]
            .concat(),
        ),
        // signingTime
        der(
            0x30,
            &[
                der(
                    0x06,
                    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05],
                ),
                der(0x31, &der(0x17, now.as_bytes())),
            ]
            .concat(),
        ),
        // messageDigest
        der(
            0x30,
            &[
                der(
                    0x06,
                    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04],
                ),
                der(0x31, &der(0x04, &digest)),
            ]
            .concat(),
        ),
    ];
    // DER orders the elements of a SET OF by their encodings.
    attrs.sort();
    let attrs = attrs.concat();
    let mut signer = openssl::sign::Signer::new(md, key).map_err(err)?;
    // The signature covers the attributes encoded as a SET (RFC 5652 §5.4).
    signer.update(&der(0x31, &attrs)).map_err(err)?;
    let signature = signer.sign_to_vec().map_err(err)?;

    let issuer = cert.issuer_name().to_der().map_err(err)?;
    let serial = cert.serial_number().to_bn().map_err(err)?.to_vec();
    let serial = if serial.first().is_none_or(|b| b & 0x80 != 0) {
        [&[0u8][..], &serial].concat()
    } else {
        serial
    };
    let rsa_encryption = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let signer_info = der(
        0x30,
        &[
            der(0x02, &[1]),
            der(0x30, &[issuer, der(0x02, &serial)].concat()),
            digest_alg.clone(),
            der(0xA0, &attrs),
            rsa_encryption,
            der(0x04, &signature),
        ]
        .concat(),
    );
    let cert_der = cert.to_der().map_err(err)?;
    let signed_data = der(
        0x30,
        &[
            der(0x02, &[1]),
            der(0x31, &digest_alg),
            der(0x30, &oid_data),
            der(0xA0, &cert_der),
            der(0x31, &signer_info),
        ]
        .concat(),
    );
    Ok(der(
        0x30,
        &[der(0x06, OID_SIGNED_DATA), der(0xA0, &signed_data)].concat(),
    ))
}

/// id-data, 1.2.840.113549.1.7.1
const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];

/// The current time as an ASN.1 UTCTime (`YYMMDDHHMMSSZ`).
fn utc_time_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{:02}{m:02}{d:02}{:02}{:02}{:02}Z",
        y.rem_euclid(100),
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A content-encryption algorithm for outbound messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    TripleDesCbc,
}

impl Encryption {
    /// `aes256-cbc`, `aes-256-cbc`, `aes_256_cbc`, `3des`, `des-ede3-cbc`, ...
    pub fn from_name(name: &str) -> Option<Encryption> {
        let norm: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect();
        match norm.as_str() {
            "aes128cbc" | "aes128" => Some(Encryption::Aes128Cbc),
            "aes192cbc" | "aes192" => Some(Encryption::Aes192Cbc),
            "aes256cbc" | "aes256" => Some(Encryption::Aes256Cbc),
            "3des" | "3descbc" | "tripledes" | "tripledescbc" | "tripledes192cbc"
            | "desede3cbc" | "desede3" => Some(Encryption::TripleDesCbc),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encryption::Aes128Cbc => "aes128-cbc",
            Encryption::Aes192Cbc => "aes192-cbc",
            Encryption::Aes256Cbc => "aes256-cbc",
            Encryption::TripleDesCbc => "3des-cbc",
        }
    }

    fn cipher(self) -> openssl::symm::Cipher {
        match self {
            Encryption::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
            Encryption::Aes192Cbc => openssl::symm::Cipher::aes_192_cbc(),
            Encryption::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
            Encryption::TripleDesCbc => openssl::symm::Cipher::des_ede3_cbc(),
        }
    }
}

/// Encrypt `content` to the partner's certificate as CMS EnvelopedData (DER),
/// the content key transported with RSA PKCS #1 v1.5 (OpenSSL's default,
/// what AS2 implementations expect).
pub fn encrypt(content: &[u8], partner: &X509, alg: Encryption) -> Result<Vec<u8>, SmimeError> {
    let err = |e: openssl::error::ErrorStack| SmimeError::Encryption(short(&e));
    let mut certs = Stack::new().map_err(err)?;
    certs.push(partner.clone()).map_err(err)?;
    openssl::cms::CmsContentInfo::encrypt(
        &certs,
        content,
        alg.cipher(),
        openssl::cms::CMSOptions::BINARY,
    )
    .map_err(err)?
    .to_der()
    .map_err(err)
}

/// A MIC digest algorithm, named as the partner named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicAlg {
    /// The name to write in Received-Content-MIC (as the partner wrote it).
    pub name: String,
    digest: DigestKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DigestKind {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl MicAlg {
    /// Recognise `sha256`, `sha-256`, `SHA1`, `md5`, ... (None if unknown).
    pub fn from_name(name: &str) -> Option<MicAlg> {
        let norm: String = name
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect();
        let digest = match norm.as_str() {
            "md5" => DigestKind::Md5,
            "sha1" => DigestKind::Sha1,
            "sha224" => DigestKind::Sha224,
            "sha256" => DigestKind::Sha256,
            "sha384" => DigestKind::Sha384,
            "sha512" => DigestKind::Sha512,
            _ => return None,
        };
        Some(MicAlg {
            name: name.trim().to_ascii_lowercase(),
            digest,
        })
    }

    /// SHA-256, named `sha-256` (RFC 5751), when the partner expressed no choice.
    pub fn default_sha256() -> MicAlg {
        MicAlg {
            name: "sha-256".into(),
            digest: DigestKind::Sha256,
        }
    }

    /// The RFC 5751 `micalg` name: `sha-256`, `sha1`, `md5`, ...
    pub fn micalg(&self) -> &'static str {
        match self.digest {
            DigestKind::Md5 => "md5",
            DigestKind::Sha1 => "sha1",
            DigestKind::Sha224 => "sha-224",
            DigestKind::Sha256 => "sha-256",
            DigestKind::Sha384 => "sha-384",
            DigestKind::Sha512 => "sha-512",
        }
    }

    /// Do two names denote the same digest (`sha256` and `SHA-256`)?
    pub fn same_digest(&self, other: &MicAlg) -> bool {
        self.digest == other.digest
    }

    /// DER contents of the digest's OID.
    fn oid(&self) -> &'static [u8] {
        match self.digest {
            DigestKind::Md5 => KNOWN_DIGESTS[0],
            DigestKind::Sha1 => KNOWN_DIGESTS[1],
            DigestKind::Sha224 => KNOWN_DIGESTS[2],
            DigestKind::Sha256 => KNOWN_DIGESTS[3],
            DigestKind::Sha384 => KNOWN_DIGESTS[4],
            DigestKind::Sha512 => KNOWN_DIGESTS[5],
        }
    }

    fn message_digest(&self) -> MessageDigest {
        match self.digest {
            DigestKind::Md5 => MessageDigest::md5(),
            DigestKind::Sha1 => MessageDigest::sha1(),
            DigestKind::Sha224 => MessageDigest::sha224(),
            DigestKind::Sha256 => MessageDigest::sha256(),
            DigestKind::Sha384 => MessageDigest::sha384(),
            DigestKind::Sha512 => MessageDigest::sha512(),
        }
    }

    /// The base64 digest of the concatenation of `parts`.
    pub fn mic(&self, parts: &[&[u8]]) -> Result<String, SmimeError> {
        use base64::Engine;
        let err = |e: openssl::error::ErrorStack| SmimeError::Signing(short(&e));
        let mut h = Hasher::new(self.message_digest()).map_err(err)?;
        for p in parts {
            h.update(p).map_err(err)?;
        }
        let d = h.finish().map_err(err)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(&*d))
    }
}

// ---------------------------------------------------------------------------
// CompressedData (RFC 3274), parsed by hand.

/// id-ct-compressedData, 1.2.840.113549.1.9.16.1.9
const OID_COMPRESSED_DATA: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x09,
];
/// id-alg-zlibCompress, 1.2.840.113549.1.9.16.3.8
const OID_ZLIB: &[u8] = &[
    0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x03, 0x08,
];
/// id-envelopedData, 1.2.840.113549.1.7.3
const OID_ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
/// id-signedData, 1.2.840.113549.1.7.2
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];

const MAX_BER_DEPTH: usize = 32;

/// What kind of CMS structure a blob is, from its outer ContentInfo OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsKind {
    Enveloped,
    Signed,
    Compressed,
    Other,
}

/// Peek at the content type of a CMS ContentInfo.
pub fn cms_kind(der: &[u8]) -> CmsKind {
    let oid = (|| {
        let (ci, _) = read_tlv(der, 0).ok()?;
        let (oid, _) = read_tlv(ci.content, 0).ok()?;
        (oid.tag == 0x06).then_some(oid.content)
    })();
    match oid {
        Some(o) if o == OID_ENVELOPED_DATA => CmsKind::Enveloped,
        Some(o) if o == OID_SIGNED_DATA => CmsKind::Signed,
        Some(o) if o == OID_COMPRESSED_DATA => CmsKind::Compressed,
        _ => CmsKind::Other,
    }
}

/// Inflate CMS CompressedData (zlib), refusing output over `max_out` bytes.
pub fn decompress(der: &[u8], max_out: u64) -> Result<Vec<u8>, SmimeError> {
    let compressed =
        compressed_content(der).map_err(|m| SmimeError::Decompression(m.to_string()))?;
    let mut out = Vec::new();
    let mut decoder =
        flate2::read::ZlibDecoder::new(&compressed[..]).take(max_out.saturating_add(1));
    decoder
        .read_to_end(&mut out)
        .map_err(|e| SmimeError::Decompression(format!("zlib: {e}")))?;
    if out.len() as u64 > max_out {
        return Err(SmimeError::Decompression(format!(
            "decompressed content exceeds the limit of {max_out} bytes"
        )));
    }
    Ok(out)
}

/// The zlib stream inside CompressedData, after checking the structure.
fn compressed_content(der: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (ci, _) = read_tlv(der, 0)?;
    expect_tag(&ci, 0x30)?;
    let (oid, rest) = read_tlv(ci.content, 0)?;
    if oid.tag != 0x06 || oid.content != OID_COMPRESSED_DATA {
        return Err("not CMS CompressedData");
    }
    let (explicit, _) = read_tlv(rest, 0)?;
    expect_tag(&explicit, 0xA0)?;
    let (cd, _) = read_tlv(explicit.content, 0)?;
    expect_tag(&cd, 0x30)?;
    let (version, rest) = read_tlv(cd.content, 0)?;
    expect_tag(&version, 0x02)?;
    let (alg, rest) = read_tlv(rest, 0)?;
    expect_tag(&alg, 0x30)?;
    let (alg_oid, _) = read_tlv(alg.content, 0)?;
    if alg_oid.tag != 0x06 || alg_oid.content != OID_ZLIB {
        return Err("compression algorithm is not zlib");
    }
    let (eci, _) = read_tlv(rest, 0)?;
    expect_tag(&eci, 0x30)?;
    let (_ctype, rest) = read_tlv(eci.content, 0)?;
    let (econtent, _) = read_tlv(rest, 0)?;
    expect_tag(&econtent, 0xA0)?;
    let (octets, _) = read_tlv(econtent.content, 0)?;
    let mut compressed = Vec::new();
    collect_octets(&octets, &mut compressed, 0)?;
    Ok(compressed)
}

/// Build RFC 3274 CompressedData (DER) around `content` (zlib). Used by
/// tests and available to senders.
pub fn compress(content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(content);
    let z = enc.finish().unwrap_or_default();
    let octets = der(0x04, &z);
    let econtent = der(0xA0, &octets);
    let data_oid = der(
        0x06,
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01],
    );
    let eci = der(0x30, &[data_oid, econtent].concat());
    let alg = der(0x30, &der(0x06, OID_ZLIB));
    let cd = der(0x30, &[der(0x02, &[0]), alg, eci].concat());
    der(
        0x30,
        &[der(0x06, OID_COMPRESSED_DATA), der(0xA0, &cd)].concat(),
    )
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

fn expect_tag(t: &Tlv<'_>, tag: u8) -> Result<(), &'static str> {
    if t.tag == tag {
        Ok(())
    } else {
        Err("unexpected ASN.1 structure")
    }
}

/// Read one BER element (definite or indefinite length) and return it with
/// the bytes that follow. For an indefinite length, `content` spans the
/// nested elements up to (not including) the end-of-contents octets.
fn read_tlv(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    if depth > MAX_BER_DEPTH {
        return Err("ASN.1 nested too deeply");
    }
    let (&tag, rest) = input.split_first().ok_or("truncated ASN.1")?;
    if tag & 0x1F == 0x1F {
        return Err("unsupported ASN.1 tag");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated ASN.1")?;
    if first == 0x80 {
        if tag & 0x20 == 0 {
            return Err("indefinite length on a primitive ASN.1 element");
        }
        // Walk nested elements until end-of-contents.
        let mut cursor = rest;
        loop {
            if cursor.len() >= 2 && cursor[0] == 0 && cursor[1] == 0 {
                let len = rest.len() - cursor.len();
                return Ok((
                    Tlv {
                        tag,
                        content: &rest[..len],
                    },
                    &cursor[2..],
                ));
            }
            let (_, after) = read_tlv(cursor, depth + 1)?;
            cursor = after;
        }
    }
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 8 || rest.len() < n {
            return Err("bad ASN.1 length");
        }
        let mut len: u64 = 0;
        for &b in &rest[..n] {
            len = (len << 8) | b as u64;
        }
        (
            usize::try_from(len).map_err(|_| "bad ASN.1 length")?,
            &rest[n..],
        )
    };
    if rest.len() < len {
        return Err("truncated ASN.1");
    }
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
        },
        &rest[len..],
    ))
}

/// Concatenate an OCTET STRING, primitive or constructed (BER segments).
fn collect_octets(t: &Tlv<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), &'static str> {
    match t.tag {
        0x04 => {
            out.extend_from_slice(t.content);
            Ok(())
        }
        0x24 => {
            let mut cursor = t.content;
            while !cursor.is_empty() {
                let (child, rest) = read_tlv(cursor, depth + 1)?;
                collect_octets(&child, out, depth + 1)?;
                cursor = rest;
            }
            Ok(())
        }
        _ => Err("compressed content is not an OCTET STRING"),
    }
}

fn short(e: &openssl::error::ErrorStack) -> String {
    let mut reasons: Vec<String> = e
        .errors()
        .iter()
        .map(|r| r.reason().unwrap_or("unknown").to_string())
        .collect();
    reasons.dedup();
    if reasons.is_empty() {
        "openssl error".into()
    } else {
        reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_roundtrip_and_limits() {
        let data = b"Content-Type: application/xml\r\n\r\n<a>hello</a>".repeat(50);
        let der = compress(&data);
        assert_eq!(cms_kind(&der), CmsKind::Compressed);
        assert_eq!(decompress(&der, 1 << 20).unwrap(), data);
        assert!(matches!(
            decompress(&der, 100),
            Err(SmimeError::Decompression(_))
        ));
        // Truncation anywhere is an error, never a panic.
        for cut in 0..der.len() {
            assert!(decompress(&der[..cut], 1 << 20).is_err());
        }
    }

    #[test]
    fn decompresses_ber_indefinite_and_segmented() {
        let z = {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"segmented payload").unwrap();
            e.finish().unwrap()
        };
        let (a, b) = z.split_at(5);
        // constructed OCTET STRING, indefinite, two segments
        let octets = [&[0x24, 0x80][..], &der(0x04, a), &der(0x04, b), &[0, 0]].concat();
        let econtent = [&[0xA0, 0x80][..], &octets, &[0, 0]].concat();
        let data_oid = der(
            0x06,
            &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01],
        );
        let eci = [&[0x30, 0x80][..], &data_oid, &econtent, &[0, 0]].concat();
        let alg = der(0x30, &der(0x06, OID_ZLIB));
        let cd = [&[0x30, 0x80][..], &der(0x02, &[0]), &alg, &eci, &[0, 0]].concat();
        let ci = [
            &[0x30, 0x80][..],
            &der(0x06, OID_COMPRESSED_DATA),
            &[0xA0, 0x80],
            &cd,
            &[0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(decompress(&ci, 1000).unwrap(), b"segmented payload");
    }

    #[test]
    fn mic_algorithms() {
        let a = MicAlg::from_name("SHA-256").unwrap();
        assert_eq!(a.name, "sha-256");
        // SHA-1 of the empty string, base64.
        assert_eq!(
            MicAlg::from_name("sha1").unwrap().mic(&[b""]).unwrap(),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
        assert_eq!(
            a.mic(&[b"ab", b"c"]).unwrap(),
            MicAlg::from_name("sha256").unwrap().mic(&[b"abc"]).unwrap()
        );
        assert!(MicAlg::from_name("crc32").is_none());
    }

    fn pair() -> (X509, PKey<Private>) {
        use openssl::asn1::Asn1Time;
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut n = openssl::x509::X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", "signer").unwrap();
        let n = n.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(0x80_12_34).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }

    #[test]
    fn signatures_with_every_digest_verify_with_openssl() {
        let (cert, key) = pair();
        let content = b"Content-Type: application/xml\r\n\r\n<a/>";
        for name in ["sha1", "sha-224", "sha-256", "sha-384", "sha-512", "md5"] {
            let alg = MicAlg::from_name(name).unwrap();
            let sig = sign_detached_with(content, &cert, &key, &alg).unwrap();
            verify_detached(&sig, content, &cert).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                matches!(
                    verify_detached(&sig, b"other content", &cert),
                    Err(SmimeError::Integrity(_))
                ),
                "{name}"
            );
            let oids = signature_digest_oids(&sig).unwrap();
            assert!(oids.iter().all(|o| *o == alg.oid()), "{name}");
        }
        let (other, _) = pair();
        let sig = sign_detached_with(content, &cert, &key, &MicAlg::from_name("sha512").unwrap())
            .unwrap();
        assert!(matches!(
            verify_detached(&sig, content, &other),
            Err(SmimeError::Authentication(_))
        ));
    }

    #[test]
    fn encrypts_to_the_partner() {
        let (cert, key) = pair();
        for alg in ["aes256-cbc", "aes128", "aes_192_cbc", "3des"] {
            let e = Encryption::from_name(alg).unwrap();
            let der = encrypt(b"secret payload", &cert, e).unwrap();
            assert_eq!(cms_kind(&der), CmsKind::Enveloped);
            assert_eq!(decrypt(&der, &key, &cert).unwrap(), b"secret payload");
        }
        assert!(Encryption::from_name("rc4").is_none());
    }

    #[test]
    fn utc_time_shape() {
        let t = utc_time_now();
        assert_eq!(t.len(), 13);
        assert!(t.ends_with('Z') && t[..12].bytes().all(|b| b.is_ascii_digit()));
    }
}
