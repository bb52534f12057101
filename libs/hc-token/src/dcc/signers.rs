//! Document signer certificates (DSCs): the X.509 certificates whose keys sign DCCs, found by `kid` (the first 8
//! bytes of the SHA-256 of the certificate's DER). Several certificates may share a `kid`; each is tried.

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use x509_cert::Certificate as X509;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::oid::db::rfc5912::{
    ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1, SECP_384_R_1,
};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::ExtendedKeyUsage;

use super::certificate::CertificateType;
use super::error::DccError;

/// The extended-key-usage OIDs that limit a signer to some certificate types (hcert §5.1.1), each in its current
/// form and in the `1.3.6.1.4.1.0.1847…` form the first signers were issued with.
const KEY_USAGES: [(&str, CertificateType); 6] = [
    ("1.3.6.1.4.1.1847.2021.1.1", CertificateType::Test),
    ("1.3.6.1.4.1.0.1847.2021.1.1", CertificateType::Test),
    ("1.3.6.1.4.1.1847.2021.1.2", CertificateType::Vaccination),
    ("1.3.6.1.4.1.0.1847.2021.1.2", CertificateType::Vaccination),
    ("1.3.6.1.4.1.1847.2021.1.3", CertificateType::Recovery),
    ("1.3.6.1.4.1.0.1847.2021.1.3", CertificateType::Recovery),
];

/// A signer's public key (its SubjectPublicKeyInfo DER) by the algorithm it verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerKey {
    /// ES256 on P-256: the hcert profile's algorithm.
    P256(Vec<u8>),
    /// ES256 (ECDSA with SHA-256) on a P-384 key: seen in Spain's test cases; COSE ties ES256 to the hash, not the
    /// curve.
    P384(Vec<u8>),
    /// PS256 (RSASSA-PSS with SHA-256).
    Rsa(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Signer {
    pub kid: [u8; 8],
    pub key: SignerKey,
    /// The certificate's validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The types it may sign; `None` when its extended key usage names none of them (no restriction).
    pub allows: Option<Vec<CertificateType>>,
    /// The certificate itself (DER), as it was given.
    pub der: Vec<u8>,
}

/// The key id of a document signer certificate.
pub fn kid_of_certificate(der: &[u8]) -> [u8; 8] {
    let mut kid = [0u8; 8];
    kid.copy_from_slice(&digest(&SHA256, der).as_ref()[..8]);
    kid
}

impl Signer {
    pub fn from_der(der: &[u8]) -> Result<Self, DccError> {
        let bad = |why: String| DccError::BadSignerCertificate(why);
        let x509 = X509::from_der(der).map_err(|e| bad(e.to_string()))?;
        let tbs = &x509.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let spki_der = spki.to_der().map_err(|e| bad(e.to_string()))?;
        let key = match spki.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(SECP_256_R_1) => SignerKey::P256(spki_der),
                    Some(SECP_384_R_1) => SignerKey::P384(spki_der),
                    other => return Err(bad(format!("an EC key on curve {other:?}"))),
                }
            }
            RSA_ENCRYPTION => SignerKey::Rsa(spki_der),
            other => return Err(bad(format!("a key of algorithm {other}"))),
        };
        let seconds = |t: x509_cert::time::Time| t.to_unix_duration().as_secs() as i64;
        Ok(Self {
            kid: kid_of_certificate(der),
            key,
            not_before: seconds(tbs.validity.not_before),
            not_after: seconds(tbs.validity.not_after),
            allows: allowed_types(&x509),
            der: der.to_vec(),
        })
    }

    /// Whether this signer may sign a certificate of this type.
    pub fn may_sign(&self, kind: CertificateType) -> bool {
        self.allows
            .as_ref()
            .is_none_or(|types| types.contains(&kind))
    }
}

/// The types the signer's extended key usage allows. Only the extension is decoded (others are never parsed, so a
/// certificate with a strictly invalid but irrelevant extension still loads); a missing, empty or undecodable
/// extended key usage, or one naming none of the DCC OIDs, restricts nothing.
fn allowed_types(x509: &X509) -> Option<Vec<CertificateType>> {
    let Ok(Some((_, ExtendedKeyUsage(oids)))) = x509.tbs_certificate.get::<ExtendedKeyUsage>()
    else {
        return None;
    };
    let allowed: Vec<CertificateType> = KEY_USAGES
        .iter()
        .filter(|(oid, _)| oids.iter().any(|o| o.to_string() == *oid))
        .map(|(_, kind)| *kind)
        .collect();
    (!allowed.is_empty()).then_some(allowed)
}

/// The trusted document signers, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct Signers(HashMap<[u8; 8], Vec<Signer>>);

impl Signers {
    pub fn new(signers: impl IntoIterator<Item = Signer>) -> Self {
        let mut by_kid: HashMap<[u8; 8], Vec<Signer>> = HashMap::new();
        for signer in signers {
            by_kid.entry(signer.kid).or_default().push(signer);
        }
        Self(by_kid)
    }

    /// Every signer under this `kid` (none for a `kid` that is not 8 bytes).
    pub fn find(&self, kid: &[u8]) -> &[Signer] {
        <[u8; 8]>::try_from(kid)
            .ok()
            .and_then(|kid| self.0.get(&kid))
            .map_or(&[], Vec::as_slice)
    }

    /// Every signer.
    pub fn all(&self) -> Vec<Signer> {
        self.0.values().flatten().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
