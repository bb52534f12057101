#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hc_fuzz::targets::dcc_decode(data));
