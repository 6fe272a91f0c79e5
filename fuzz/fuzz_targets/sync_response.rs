//! libFuzzer target: see `peerchain_fuzz::sync_response`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::sync_response(data));
