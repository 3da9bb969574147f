//! The manifest parser on arbitrary bytes: it may refuse, it must never panic, and whatever
//! it accepts must write back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rds_handoff::base::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data) {
        let again = Manifest::parse(manifest.to_json().as_bytes()).expect("a parsed manifest re-parses");
        assert_eq!(again, manifest);
    }
});
