//! libFuzzer target: see `peerchain_fuzz::contract_message`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerchain_fuzz::contract_message(data));
