//! libFuzzer target: see `peerchain_fuzz::bitmap`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::bitmap(data));
