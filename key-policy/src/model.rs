//! The typed key policy document: what KMS stores, parsed and written back faithfully.
//!
//! Values that IAM allows as "a string or a list of strings" keep the form they were given
//! ([`OneOrMany`]), so a policy read from KMS and written back is unchanged. Condition values
//! written as JSON booleans or numbers (`"kms:GrantIsForAWSResource": true`) are accepted and
//! kept as they were.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const POLICY_VERSION: &str = "2012-10-17";

/// A string or a list of strings, as IAM policy JSON allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }

    /// One value is written as a string, several as a list.
    pub fn from_vec(mut values: Vec<String>) -> Self {
        if values.len() == 1 {
            Self::One(values.remove(0))
        } else {
            Self::Many(values)
        }
    }
}

impl From<&str> for OneOrMany {
    fn from(value: &str) -> Self {
        Self::One(value.to_owned())
    }
}

/// A condition value: JSON allows strings, booleans and numbers; IAM compares them as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionValue {
    Text(String),
    Bool(bool),
    Number(serde_json::Number),
}

impl ConditionValue {
    pub fn as_text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Bool(b) => b.to_string(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// One or several condition values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConditionValues {
    One(ConditionValue),
    Many(Vec<ConditionValue>),
}

impl ConditionValues {
    pub fn texts(&self) -> Vec<String> {
        match self {
            Self::One(v) => vec![v.as_text()],
            Self::Many(vs) => vs.iter().map(ConditionValue::as_text).collect(),
        }
    }
}

impl From<&str> for ConditionValues {
    fn from(value: &str) -> Self {
        Self::One(ConditionValue::Text(value.to_owned()))
    }
}

/// `{ "StringEquals": { "kms:ViaService": "rds.us-east-1.amazonaws.com" } }`
pub type Conditions = BTreeMap<String, BTreeMap<String, ConditionValues>>;

/// `"*"` or `{ "AWS": [...], "Service": [...] }`, several types in one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Principal {
    Any(AnyPrincipal),
    Typed(BTreeMap<String, OneOrMany>),
}

/// The literal `"*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnyPrincipal {
    #[serde(rename = "*")]
    Star,
}

impl Principal {
    /// `{"AWS": [arns...]}`.
    pub fn aws(arns: Vec<String>) -> Self {
        Self::Typed(BTreeMap::from([(
            "AWS".to_owned(),
            OneOrMany::from_vec(arns),
        )]))
    }

    /// Every (type, value) pair; `"*"` is `("AWS", "*")`.
    pub fn entries(&self) -> Vec<(&str, &str)> {
        match self {
            Self::Any(_) => vec![("AWS", "*")],
            Self::Typed(map) => map
                .iter()
                .flat_map(|(kind, values)| values.iter().map(move |v| (kind.as_str(), v)))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement. Field order is the order KMS and reviewers expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    #[serde(
        rename = "NotPrincipal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_principal: Option<Principal>,
    #[serde(rename = "Action", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OneOrMany>,
    #[serde(rename = "NotAction", default, skip_serializing_if = "Option::is_none")]
    pub not_action: Option<OneOrMany>,
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<OneOrMany>,
    #[serde(
        rename = "NotResource",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_resource: Option<OneOrMany>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Conditions>,
}

impl Statement {
    pub fn sid(&self) -> &str {
        self.sid.as_deref().unwrap_or("(no Sid)")
    }
}

/// A key policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "Statement")]
    pub statement: Statements,
}

/// `Statement` may be one object or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Statements {
    One(Box<Statement>),
    Many(Vec<Statement>),
}

impl PolicyDocument {
    pub fn new(id: &str, statements: Vec<Statement>) -> Self {
        Self {
            version: POLICY_VERSION.to_owned(),
            id: Some(id.to_owned()),
            statement: Statements::Many(statements),
        }
    }

    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn statements(&self) -> &[Statement] {
        match &self.statement {
            Statements::One(one) => std::slice::from_ref(one),
            Statements::Many(many) => many,
        }
    }

    pub fn into_statements(self) -> Vec<Statement> {
        match self.statement {
            Statements::One(one) => vec![*one],
            Statements::Many(many) => many,
        }
    }

    /// The JSON KMS accepts, indented for review.
    pub fn to_json(&self) -> String {
        // INVARIANT: every field is a string, list, map or bool; serialization cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_world_shapes_and_writes_them_back() {
        let text = r#"{
          "Version": "2012-10-17",
          "Id": "key-default-1",
          "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow",
             "Principal": {"AWS": ["arn:aws:iam::111111111111:role/A", "222222222222"], "Service": "rds.amazonaws.com"},
             "Action": ["kms:CreateGrant", "kms:ListGrants"], "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}, "NumericLessThan": {"x:n": 3}}},
            {"Effect": "Deny", "Principal": "*", "NotAction": "kms:Decrypt", "Resource": "*"}
          ]
        }"#;
        let doc = PolicyDocument::parse(text).unwrap();
        assert_eq!(doc.statements().len(), 3);
        let second = &doc.statements()[1];
        let entries = second.principal.as_ref().unwrap().entries();
        assert_eq!(entries.len(), 3);
        assert!(entries.contains(&("Service", "rds.amazonaws.com")));
        assert_eq!(
            doc.statements()[2].principal.as_ref().unwrap().entries(),
            vec![("AWS", "*")]
        );
        let cond = second.condition.as_ref().unwrap();
        assert_eq!(
            cond["Bool"]["kms:GrantIsForAWSResource"].texts(),
            vec!["true"]
        );

        let again = PolicyDocument::parse(&doc.to_json()).unwrap();
        assert_eq!(doc, again);
        let round: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(round, original, "written back exactly as read");
    }

    #[test]
    fn single_statement_object() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(doc.statements().len(), 1);
    }

    /// A document of `statement`, then the keys in `extra`.
    fn document(statement: &str, extra: &str) -> String {
        let version = r#""Version":"2012-10-17""#;
        format!(r#"{{{version},"Statement":[{statement}]{extra}}}"#)
    }

    /// Why `text` does not parse as one statement.
    fn statement_error(text: &str) -> String {
        let err = serde_json::from_str::<Statement>(text).unwrap_err();
        err.to_string()
    }

    #[test]
    fn typos_are_errors() {
        // Each case is a valid document or statement with one typo, and the error names it.
        const GOOD: &str = r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#;
        PolicyDocument::parse(&document(GOOD, "")).unwrap();
        serde_json::from_str::<Statement>(GOOD).unwrap();

        // A misspelt key of the document, beside every key it needs.
        let text = document(GOOD, r#","Statment":[]"#);
        let err = PolicyDocument::parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `Statment`"), "{err}");

        // A misspelt key of a statement, beside every key it needs. Within a document, the
        // statement list (one object or several) only says that it matched neither shape.
        let key = r#"{"Effect":"Allow","Action":"kms:*","Resource":"*","Conditon":{}}"#;
        let err = statement_error(key);
        assert!(err.contains("unknown field `Conditon`"), "{err}");
        assert!(PolicyDocument::parse(&document(key, "")).is_err());

        // A misspelt value.
        let value = r#"{"Effect":"Alow","Action":"kms:*","Resource":"*"}"#;
        let err = statement_error(value);
        assert!(err.contains("unknown variant `Alow`"), "{err}");
        assert!(PolicyDocument::parse(&document(value, "")).is_err());
    }
}
