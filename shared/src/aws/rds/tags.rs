//! Tags as RDS takes them (a list) and gives them (a map), the user's tags a copy keeps, and
//! whether a resource carries the toolkit's marks (what lets it delete only its own).

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

pub fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The user's tags of a resource, without the `aws:` ones AWS sets and nobody may copy.
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Tags as a map, as RDS lists them.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// Whether `tags` hold every mark with its value.
pub(super) fn carries(tags: &BTreeMap<String, String>, marks: &[(&str, &str)]) -> bool {
    marks
        .iter()
        .all(|(k, v)| tags.get(*k).map(String::as_str) == Some(*v))
}
