//! The steps that take an `HC1:` code apart, outermost first: prefix, base45, zlib, COSE_Sign1, CWT claims. None of
//! them trusts anything; the signature is checked in `verify`.

use std::io::Read;

use ciborium::Value;
use coset::cwt::{ClaimName, ClaimsSet, Timestamp};
use coset::{AsCborValue, CborSerializable, CoseSign1, iana};

use super::error::DccError;
use super::{MAX_CODE_LEN, MAX_INFLATED, PREFIX};

/// CBOR tags allowed around the COSE_Sign1: 61 is the CWT tag some issuers put outside tag 18 (RFC 8392 §6).
const CWT_TAG: u64 = 61;
const COSE_SIGN1_TAG: u64 = 18;

/// The claims of a DCC's CWT. Times are Unix microseconds: some issuers write them as CBOR floats.
#[derive(Debug, Clone)]
pub struct DccClaims {
    /// The issuing country (ISO 3166-1 alpha-2), when given.
    pub issuer: Option<String>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// The certificate: claim -260 (`hcert`), key 1 (the DCC), still as CBOR.
    pub dgc: Value,
}

pub fn unprefix(code: &str) -> Result<&str, DccError> {
    if code.len() > MAX_CODE_LEN {
        return Err(DccError::TooLong);
    }
    code.strip_prefix(PREFIX).ok_or(DccError::BadPrefix)
}

pub fn decode_base45(text: &str) -> Result<Vec<u8>, DccError> {
    base45::decode(text).map_err(|_| DccError::BadBase45)
}

/// Inflates a zlib stream, refusing one that is not zlib or that inflates past [`MAX_INFLATED`].
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, DccError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|_| DccError::BadCompression)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(DccError::BadCompression);
    }
    Ok(out)
}

/// Decodes one CBOR item that must be the whole input: trailing bytes are refused, not ignored.
pub fn strict_cbor(bytes: &[u8]) -> Result<Value, String> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest).map_err(|e| e.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} bytes after the CBOR item", rest.len()))
    }
}

/// The COSE_Sign1, with or without its tag 18 and an outer CWT tag 61.
pub fn cose(bytes: &[u8]) -> Result<CoseSign1, DccError> {
    let mut value = strict_cbor(bytes).map_err(DccError::BadCose)?;
    for tag in [CWT_TAG, COSE_SIGN1_TAG] {
        if let Value::Tag(found, inner) = value {
            value = if found == tag {
                *inner
            } else {
                Value::Tag(found, inner)
            };
        }
    }
    CoseSign1::from_cbor_value(value).map_err(|e| DccError::BadCose(e.to_string()))
}

/// The CWT claims of a COSE_Sign1's payload.
pub fn claims(sign1: &CoseSign1) -> Result<DccClaims, DccError> {
    let bad = |why: String| DccError::BadClaims(why);
    let payload = sign1.payload.as_deref().ok_or(bad("no payload".into()))?;
    let set = ClaimsSet::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let hcert = set
        .rest
        .iter()
        .find(|(name, _)| *name == ClaimName::Assigned(iana::CwtClaimName::Hcert))
        .map(|(_, value)| value)
        .ok_or(bad("no hcert claim (-260)".into()))?;
    Ok(DccClaims {
        issuer: set.issuer,
        issued_at: set.issued_at.map(micros),
        expires_at: set.expiration_time.map(micros),
        dgc: dgc_of_cwt(hcert).ok_or(bad("the hcert claim has no DCC (key 1)".into()))?,
    })
}

/// The DCC inside an `hcert` claim's value: its key 1 (hcert §2.6.3).
pub fn dgc_of_cwt(hcert: &Value) -> Option<Value> {
    hcert
        .as_map()?
        .iter()
        .find_map(|(key, value)| (key.as_integer() == Some(1.into())).then(|| value.clone()))
}

/// The DCC as JSON, the form its schema and business rules are written for.
pub fn to_json(dgc: &Value) -> Result<serde_json::Value, DccError> {
    dgc.deserialized()
        .map_err(|e| DccError::BadCertificate(e.to_string()))
}

fn micros(t: Timestamp) -> i64 {
    match t {
        Timestamp::WholeSeconds(s) => s.saturating_mul(1_000_000),
        // Saturating: `as` on a float clamps, and a NaN becomes 0 (1970, expired).
        Timestamp::FractionalSeconds(s) => (s * 1e6).round() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_inflates_past_the_cap_is_refused() {
        use std::io::Write;
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder
            .write_all(&vec![0u8; MAX_INFLATED as usize + 1])
            .expect("in memory");
        let bomb = encoder.finish().expect("in memory");
        assert_eq!(inflate(&bomb), Err(DccError::BadCompression));
        assert_eq!(inflate(b"\xd2\x84"), Err(DccError::BadCompression));
    }

    #[test]
    fn trailing_bytes_after_the_cbor_item_are_refused() {
        assert!(strict_cbor(&[0x01]).is_ok());
        assert!(strict_cbor(&[0x01, 0x02]).is_err());
    }

    #[test]
    fn the_prefix_and_length_are_checked_first() {
        assert_eq!(unprefix("HC2:abc"), Err(DccError::BadPrefix));
        assert_eq!(unprefix("HC1:abc"), Ok("abc"));
        let long = format!("HC1:{}", "A".repeat(MAX_CODE_LEN));
        assert_eq!(unprefix(&long), Err(DccError::TooLong));
    }
}
