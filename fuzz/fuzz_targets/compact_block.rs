//! libFuzzer target: see `peerchain_fuzz::compact_block`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::compact_block(data));
