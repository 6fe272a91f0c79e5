//! libFuzzer target: see `peerchain_fuzz::market_response`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::market_response(data));
