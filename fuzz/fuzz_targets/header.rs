//! libFuzzer target: see `peerchain_fuzz::header`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::header(data));
