//! Identifier and ARN validators on arbitrary text: never panic, and what they accept keeps
//! its rules (so a bad name can't slip into an AWS call).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rds_handoff::ident::{AccountId, Arn, DbClusterId, DbInstanceId, DbSnapshotId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(id) = text.parse::<DbInstanceId>() {
        let s = id.as_str();
        assert!(s.len() <= 63 && !s.contains("--") && !s.ends_with('-'));
        assert!(s.starts_with(|c: char| c.is_ascii_lowercase()));
    }
    let _ = text.parse::<DbClusterId>();
    if let Ok(id) = text.parse::<DbSnapshotId>() {
        assert!(id.as_str().len() <= 255);
    }
    if let Ok(account) = text.parse::<AccountId>() {
        assert!(account.as_str().len() == 12);
    }
    if let Ok(arn) = text.parse::<Arn>() {
        assert_eq!(arn.as_str(), text);
        assert!(arn.as_str().starts_with("arn:"));
    }
});
