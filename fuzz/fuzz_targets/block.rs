//! libFuzzer target: see `peerchain_fuzz::block`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::block(data));
