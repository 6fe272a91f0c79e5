//! libFuzzer target: see `peerchain_fuzz::announcement`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::announcement(data));
