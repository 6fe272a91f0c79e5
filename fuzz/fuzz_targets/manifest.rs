//! libFuzzer target: see `peerchain_fuzz::manifest`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::manifest(data));
