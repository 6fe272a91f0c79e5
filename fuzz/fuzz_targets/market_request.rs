//! libFuzzer target: see `peerchain_fuzz::market_request`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::market_request(data));
