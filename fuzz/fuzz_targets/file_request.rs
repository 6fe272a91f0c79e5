//! libFuzzer target: see `peerchain_fuzz::file_request`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::file_request(data));
