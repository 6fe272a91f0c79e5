//! libFuzzer target: see `peerchain_fuzz::transaction`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::transaction(data));
