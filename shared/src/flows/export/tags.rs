//! The tags an export puts on what it makes (the database, the target account, each
//! resource's role), which later runs, `status`, `cleanup` and `revoke` read back to know
//! the toolkit's own resources.

use std::collections::BTreeMap;

use super::ExportPlan;

pub use crate::base::vocabulary::{
    TAG_DB, TAG_ROLE, TAG_SOURCE_REGION, TAG_TARGET, TAG_TARGET_REGION,
};

pub(super) fn base_tags(plan: &ExportPlan) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (TAG_DB.into(), plan.db.clone()),
        (TAG_TARGET.into(), plan.target.to_string()),
    ]);
    if let Some(region) = &plan.source_region {
        tags.insert(TAG_SOURCE_REGION.into(), region.to_string());
    }
    if let Some(region) = &plan.target_region {
        tags.insert(TAG_TARGET_REGION.into(), region.to_string());
    }
    tags
}

pub fn with_role(tags: &BTreeMap<String, String>, role: &str) -> BTreeMap<String, String> {
    let mut tags = tags.clone();
    tags.insert(TAG_ROLE.into(), role.into());
    tags
}
