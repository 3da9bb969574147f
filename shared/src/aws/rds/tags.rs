//! Tags as RDS takes them (a list) and gives them (a map), the user's tags a copy keeps, and
//! whether a resource carries the toolkit's marks (what lets it delete only its own), and the
//! operator's tags added to a database after the Step Functions engine made it.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::vocabulary::DbKind;

use super::describe_db;

pub fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The user's tags of a resource, without the `aws:` ones AWS sets and nobody may copy, and
/// without the toolkit's, which mark what it made and are never copied from another resource.
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| crate::base::manifest::is_user_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A database's tags: the toolkit's `marks` and as many of the `user`'s (copied from the
/// original) as fit beside them within AWS's 50 per resource; and the keys left out, the last
/// by key, for the run to say.
pub fn with_marks(
    user: &BTreeMap<String, String>,
    marks: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let room = crate::base::manifest::MAX_TAGS.saturating_sub(marks.len());
    let left_out = user.keys().skip(room).cloned().collect();
    let mut all: BTreeMap<String, String> = user
        .iter()
        .take(room)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all.extend(marks);
    (all, left_out)
}

/// What a run says of the original's tags a database could not take.
pub fn left_out_warning(left_out: &[String]) -> Option<String> {
    (!left_out.is_empty()).then(|| {
        format!(
            "the original's tags {} are left out: AWS allows 50 tags on a database, and the toolkit's own tags come first; replace others by hand if you need these",
            left_out.join(", ")
        )
    })
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

/// Gives database `id` each of `tags` whose key it lacks (a key it has keeps its value), and
/// returns the keys added; `along` goes with them unchanged (the source policy lets a
/// database without a role be tagged only together with one of the toolkit's keys). Run
/// again, it adds nothing.
pub async fn add_missing_tags(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    tags: &BTreeMap<String, String>,
    along: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let Some(db) = describe_db(aws, kind, id).await? else {
        return Ok(Vec::new());
    };
    let mut missing: BTreeMap<String, String> = tags
        .iter()
        .filter(|(k, _)| !db.database.tags.contains_key(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let added: Vec<String> = missing.keys().cloned().collect();
    if added.is_empty() {
        return Ok(added);
    }
    missing.extend(along.iter().map(|(k, v)| (k.clone(), v.clone())));
    aws.rds
        .add_tags_to_resource()
        .resource_name(&db.arn)
        .set_tags(Some(tag_list(&missing)))
        .send()
        .await
        .map_err(sdk("rds:AddTagsToResource"))?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fifty tags of the original's and the toolkit's three: the last three by key stay out.
    #[test]
    fn a_database_takes_the_toolkits_tags_and_as_many_of_the_originals_as_fit() {
        let user: BTreeMap<String, String> = (0..50)
            .map(|i| (format!("k{i:02}"), "v".to_owned()))
            .collect();
        let marks: BTreeMap<String, String> = [
            "rds-handoff:db",
            "rds-handoff:role",
            "rds-handoff:source-snapshot",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), "m".to_owned()))
        .collect();
        let (all, left_out) = with_marks(&user, marks);
        assert_eq!(all.len(), 50);
        assert!(all.contains_key("rds-handoff:role") && all.contains_key("k46"));
        assert_eq!(left_out, ["k47", "k48", "k49"]);
        assert!(left_out_warning(&left_out)
            .unwrap()
            .contains("k47, k48, k49"));
        let few: BTreeMap<String, String> = BTreeMap::from([("team".into(), "x".into())]);
        assert_eq!(with_marks(&few, BTreeMap::new()).1, Vec::<String>::new());
    }
}
