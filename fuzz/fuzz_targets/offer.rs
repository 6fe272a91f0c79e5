//! libFuzzer target: see `peerchain_fuzz::offer`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::offer(data));
