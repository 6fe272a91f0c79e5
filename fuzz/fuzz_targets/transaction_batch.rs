//! libFuzzer target: see `peerchain_fuzz::transaction_batch`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::transaction_batch(data));
