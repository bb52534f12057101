//! Any input, as text after the prefix or as raw bytes behind base45, must end in claims or a typed error: never a
//! panic, an abort or a hang.
#![no_main]

use hc_token::{SigningKey, TrustStore, Validation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed("440100", "fuzz-1", &[7; 32]).expect("key");
    let trust = TrustStore::new([key.verifying_key()]);
    let at = Validation::at(1_767_225_660);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hc_token::decode(text, &trust, at);
        let _ = hc_token::inspect(text);
    }
    let code = format!("{}{}", hc_token::PREFIX, base45::encode(data));
    let _ = hc_token::decode(&code, &trust, at);
});
