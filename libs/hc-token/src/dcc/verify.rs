//! Verifying a DCC: the signer by `kid`, the signature, the times, the certificate and the signer's key usage.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA256_ASN1, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use base64::Engine as _;
use coset::{Algorithm, CoseSign1, iana};
use x509_cert::der::Encode;
use x509_cert::der::asn1::UintRef;

use super::certificate::{Certificate, CertificateType};
use super::codec::{self, DccClaims};
use super::error::DccError;
use super::signers::{Signer, SignerKey, Signers};

/// A DCC that verified: what a checkpoint may judge.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The issuing country from the CWT, when given.
    pub issuer: Option<String>,
    pub kid: [u8; 8],
    /// Unix microseconds.
    pub issued_at: i64,
    pub expires_at: i64,
    pub certificate: Certificate,
}

/// The key id: the protected header's, else the unprotected one's (hcert §3.3.1). Never "try every signer": a code
/// naming a wrong `kid` is refused even if some other signer's key would verify it.
pub fn kid(sign1: &CoseSign1) -> &[u8] {
    if sign1.protected.header.key_id.is_empty() {
        &sign1.unprotected.key_id
    } else {
        &sign1.protected.header.key_id
    }
}

/// The algorithm, from the protected header, else the unprotected one: the signer's key type decides which
/// verifier runs, and the header's algorithm must agree with it, so its place cannot substitute one.
fn algorithm(sign1: &CoseSign1) -> Option<&Algorithm> {
    sign1
        .protected
        .header
        .alg
        .as_ref()
        .or(sign1.unprotected.alg.as_ref())
}

/// The signature of the COSE_Sign1 under one signer's key.
pub fn verify_signature(sign1: &CoseSign1, signer: &Signer) -> Result<(), DccError> {
    const ES256: Algorithm = Algorithm::Assigned(iana::Algorithm::ES256);
    const PS256: Algorithm = Algorithm::Assigned(iana::Algorithm::PS256);
    let data = sign1.tbs_data(b"");
    let check = |algorithm: &'static dyn VerificationAlgorithm, spki: &[u8], signature: &[u8]| {
        UnparsedPublicKey::new(algorithm, spki)
            .verify(&data, signature)
            .map_err(|_| DccError::BadSignature)
    };
    match (algorithm(sign1), &signer.key) {
        (Some(&ES256), SignerKey::P256(spki)) => {
            check(&ECDSA_P256_SHA256_FIXED, spki, &sign1.signature)
        }
        (Some(&ES256), SignerKey::P384(spki)) => check(
            &ECDSA_P384_SHA256_ASN1,
            spki,
            &p384_as_der(&sign1.signature)?,
        ),
        (Some(&PS256), SignerKey::Rsa(spki)) => {
            check(&RSA_PSS_2048_8192_SHA256, spki, &sign1.signature)
        }
        (Some(other), key) => {
            let name = match other {
                Algorithm::Assigned(a) => format!("{a:?}"),
                Algorithm::PrivateUse(n) => n.to_string(),
                Algorithm::Text(t) => t.clone(),
            };
            let key = match key {
                SignerKey::P256(_) => "a P-256",
                SignerKey::P384(_) => "a P-384",
                SignerKey::Rsa(_) => "an RSA",
            };
            Err(DccError::WrongAlgorithm(format!(
                "{name}, which {key} signer key does not verify"
            )))
        }
        (None, _) => Err(DccError::WrongAlgorithm("no algorithm".into())),
    }
}

/// COSE writes an ECDSA signature as r ‖ s (RFC 9053 §2.1); aws-lc-rs has P-384 with SHA-256 only in the ASN.1 form.
fn p384_as_der(signature: &[u8]) -> Result<Vec<u8>, DccError> {
    #[derive(der::Sequence)]
    struct EcdsaSigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    if signature.len() != 96 {
        return Err(DccError::BadSignature);
    }
    let (r, s) = signature.split_at(48);
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|_| DccError::BadSignature)?,
        s: UintRef::new(s).map_err(|_| DccError::BadSignature)?,
    };
    value.to_der().map_err(|_| DccError::BadSignature)
}

/// The times (hcert §3.3.3 and the official test cases' rule), each bound inclusive: the signer's validity starts by
/// the issue, the issue is not after `clock`, `clock` is not after the expiry, and the expiry is within the signer's
/// validity. `clock` is Unix microseconds.
pub fn check_expiry(claims: &DccClaims, signer: &Signer, clock: i64) -> Result<(), DccError> {
    check_expiry_within(claims, signer, clock, 0)
}

/// As [`check_expiry`], with `leeway` microseconds of clock difference tolerated between the issuer and the gate
/// (an issue that far in the future, an expiry that far in the past); the signer's validity is checked exactly.
pub fn check_expiry_within(
    claims: &DccClaims,
    signer: &Signer,
    clock: i64,
    leeway: i64,
) -> Result<(), DccError> {
    let issued_at = claims
        .issued_at
        .ok_or(DccError::BadClaims("no issue time (iat)".into()))?;
    let expires_at = claims
        .expires_at
        .ok_or(DccError::BadClaims("no expiry (exp)".into()))?;
    if issued_at > clock.saturating_add(leeway) {
        Err(DccError::NotYetValid)
    } else if clock.saturating_sub(leeway) > expires_at {
        Err(DccError::Expired)
    } else if issued_at < signer.not_before.saturating_mul(1_000_000)
        || expires_at > signer.not_after.saturating_mul(1_000_000)
    {
        Err(DccError::SignerNotValid)
    } else {
        Ok(())
    }
}

pub fn check_key_usage(signer: &Signer, kind: CertificateType) -> Result<(), DccError> {
    if signer.may_sign(kind) {
        Ok(())
    } else {
        Err(DccError::KeyUsage(kind.name()))
    }
}

/// Every step, in the order that refuses a bad code most cheaply. `clock` and `leeway` are Unix microseconds (the
/// official test cases: no leeway; a gate: its clock difference tolerated).
pub fn verify(
    code: &str,
    signers: &Signers,
    clock: i64,
    leeway: i64,
) -> Result<Verified, DccError> {
    let compressed = codec::decode_base45(codec::unprefix(code)?)?;
    let sign1 = codec::cose(&codec::inflate(&compressed)?)?;
    let kid = kid(&sign1);
    let candidates = signers.find(kid);
    if candidates.is_empty() {
        return Err(DccError::UnknownKid(
            base64::engine::general_purpose::STANDARD.encode(kid),
        ));
    }
    let mut outcome = Err(DccError::BadSignature);
    for candidate in candidates {
        outcome = verify_signature(&sign1, candidate).map(|()| candidate);
        if outcome.is_ok() {
            break;
        }
    }
    let signer = outcome?;
    let claims = codec::claims(&sign1)?;
    check_expiry_within(&claims, signer, clock, leeway)?;
    let certificate = Certificate::from_json(codec::to_json(&claims.dgc)?)?;
    check_key_usage(signer, certificate.kind()?)?;
    Ok(Verified {
        issuer: claims.issuer,
        kid: signer.kid,
        issued_at: claims.issued_at.unwrap_or_default(),
        expires_at: claims.expires_at.unwrap_or_default(),
        certificate,
    })
}
