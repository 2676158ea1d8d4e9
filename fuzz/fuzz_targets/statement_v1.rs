#![no_main]
use karmayogi_lrs::xapi::XapiVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| karmayogi_lrs_fuzz::statement(data, XapiVersion::V1_0));
