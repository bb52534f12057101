//! Personal fields sealed for storage: each is bound to its row and column, so a ciphertext copied elsewhere
//! does not decrypt.

use hc_domain::PersonId;
use hc_platform::privacy::FieldCipher;

#[derive(Debug, Clone, Copy, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Field {
    Name,
    IdNumber,
    Phone,
}

fn context(person: PersonId, field: Field) -> Vec<u8> {
    format!("persons/{person}/{}", <&str>::from(field)).into_bytes()
}

pub fn seal(
    cipher: &FieldCipher,
    person: PersonId,
    field: Field,
    plaintext: &str,
) -> anyhow::Result<Vec<u8>> {
    cipher.encrypt(plaintext.as_bytes(), &context(person, field))
}

pub fn open(
    cipher: &FieldCipher,
    person: PersonId,
    key_id: &str,
    field: Field,
    sealed: &[u8],
) -> anyhow::Result<String> {
    let plain = cipher.decrypt(key_id, sealed, &context(person, field))?;
    Ok(String::from_utf8(plain)?)
}
