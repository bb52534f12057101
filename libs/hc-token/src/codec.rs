//! Encoding a code (claims -> CWT -> COSE_Sign1 -> CBOR -> base45 -> `HCQ1:`) and decoding one, in the order that
//! refuses a bad code as cheaply as possible: prefix, base45, CBOR, algorithm, key id, signature, claims, time.

use coset::iana::{self, EnumI64};
use coset::{
    Algorithm, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder,
    TaggedCborSerializable, cwt::ClaimsSet,
};

use crate::PREFIX;
use crate::claims::CodeClaims;
use crate::error::{DecodeError, EncodeError};
use crate::keys::{Keys, SigningKey};

/// When a code is judged, and how much clock difference between issuer and verifier is tolerated.
#[derive(Debug, Clone, Copy)]
pub struct Validation {
    /// Unix seconds.
    pub now: i64,
    /// Seconds a code may appear issued in the future, or be past its expiry, because clocks differ.
    pub leeway: i64,
}

impl Validation {
    pub fn at(now: i64) -> Self {
        Self { now, leeway: 0 }
    }
}

/// Signs the claims with the key (its id goes in the protected header) and returns the code.
pub fn encode(claims: &CodeClaims, key: &SigningKey) -> Result<String, EncodeError> {
    let payload = claims
        .to_claims_set()
        .to_vec()
        .map_err(|e| EncodeError::Claims(e.to_string()))?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.kid().as_bytes().to_vec())
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(&[], |to_be_signed| key.sign(to_be_signed))
        .build();
    let bytes = sign1
        .to_tagged_vec()
        .map_err(|e| EncodeError::Cose(e.to_string()))?;
    Ok(format!("{PREFIX}{}", base45::encode(&bytes)))
}

/// Takes a code apart without verifying it: its key id and claims (for tools and for telling a checkpoint what a
/// refused code said). Never trust what this returns.
pub fn inspect(code: &str) -> Result<(String, CodeClaims), DecodeError> {
    let sign1 = parse(code)?;
    let kid = String::from_utf8_lossy(&sign1.protected.header.key_id).into_owned();
    Ok((kid, claims_of(sign1)?))
}

/// Verifies a code against the trusted keys and returns its claims.
pub fn decode(code: &str, keys: &impl Keys, at: Validation) -> Result<CodeClaims, DecodeError> {
    let sign1 = parse(code)?;
    let header = &sign1.protected.header;
    match &header.alg {
        Some(Algorithm::Assigned(iana::Algorithm::EdDSA)) => {}
        Some(Algorithm::Assigned(other)) => {
            return Err(DecodeError::WrongAlgorithm(format!(
                "{other:?} ({})",
                other.to_i64()
            )));
        }
        Some(other) => return Err(DecodeError::WrongAlgorithm(format!("{other:?}"))),
        None => return Err(DecodeError::WrongAlgorithm("no algorithm".into())),
    }
    let kid = String::from_utf8_lossy(&header.key_id).into_owned();
    let candidates = keys.find(&header.key_id);
    if candidates.is_empty() {
        return Err(DecodeError::UnknownKeyId(kid));
    }
    // Usually one key; several issuers may use the same id, and the one whose key verifies the signature signed it.
    let data = sign1.tbs_data(&[]);
    let key = candidates
        .iter()
        .find(|key| key.verifies(&data, &sign1.signature))
        .ok_or(DecodeError::BadSignature)?;
    let claims = claims_of(sign1)?;
    if claims.issuer != key.issuer {
        return Err(DecodeError::IssuerMismatch {
            kid,
            key_issuer: key.issuer.clone(),
            claimed: claims.issuer,
        });
    }
    if key
        .signs_until
        .is_some_and(|until| claims.issued_at > until)
    {
        return Err(DecodeError::KeyNotValid(kid));
    }
    if claims.issued_at > at.now + at.leeway {
        return Err(DecodeError::NotYetValid(claims.issued_at));
    }
    if claims.expires_at + at.leeway <= at.now {
        return Err(DecodeError::Expired(claims.expires_at));
    }
    Ok(claims)
}

fn parse(code: &str) -> Result<CoseSign1, DecodeError> {
    let body = code.strip_prefix(PREFIX).ok_or(DecodeError::BadPrefix)?;
    let bytes = base45::decode(body).map_err(|_| DecodeError::BadBase45)?;
    CoseSign1::from_tagged_slice(&bytes).map_err(|e| DecodeError::BadCbor(e.to_string()))
}

fn claims_of(sign1: CoseSign1) -> Result<CodeClaims, DecodeError> {
    let payload = sign1
        .payload
        .ok_or_else(|| DecodeError::BadClaims("no payload".into()))?;
    let set = ClaimsSet::from_slice(&payload).map_err(|e| DecodeError::BadClaims(e.to_string()))?;
    CodeClaims::from_claims_set(set)
}
