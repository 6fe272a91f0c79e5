//! libFuzzer target: see `peerchain_fuzz::verify_range`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::verify_range(data));
