//! Evaluates a key policy for one request, the way KMS does for the key-policy side.
//!
//! Rules, in the order they combine:
//! - any matching `Deny` statement denies (explicit deny wins over everything);
//! - otherwise any matching `Allow` statement allows;
//! - otherwise the request is denied (implicit deny).
//!
//! A statement matches when its principal, action, resource and every condition match.
//! `arn:aws:iam::<account>:root` (or the bare account id) names every principal of that
//! account: the key policy delegates to that account's IAM policies, which this evaluator does
//! not see. The decision names the statements that decided it.

use std::collections::BTreeMap;

use super::model::{Effect, OneOrMany, PolicyDocument, Principal, Statement};

/// Who asks, for what, with which request context.
#[derive(Debug, Clone)]
pub struct Request {
    /// An IAM principal ARN (`arn:aws:iam::A:role/R`, `arn:aws:iam::A:root`) or a service
    /// principal (`rds.amazonaws.com`).
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// Condition keys present in the request, lowercased names.
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    /// A request by `principal`; `kms:CallerAccount`, `aws:PrincipalArn` and
    /// `aws:PrincipalAccount` are filled from the principal ARN.
    pub fn new(principal: &str, action: &str) -> Self {
        let mut request = Self {
            principal: principal.to_owned(),
            action: action.to_owned(),
            resource: "*".to_owned(),
            context: BTreeMap::new(),
        };
        if let Some(account) = account_of(principal) {
            request = request
                .with("kms:CallerAccount", account)
                .with("aws:PrincipalAccount", account)
                .with("aws:PrincipalArn", principal);
        }
        request
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.context
            .insert(key.to_ascii_lowercase(), vec![value.to_owned()]);
        self
    }

    /// The same request made through an AWS service in a region (`kms:ViaService`).
    pub fn via(self, service: &str, region: &str) -> Self {
        self.with(
            "kms:ViaService",
            &format!("{service}.{region}.amazonaws.com"),
        )
    }

    /// A grant request made by an AWS service on behalf of a resource.
    pub fn for_aws_resource(self) -> Self {
        self.with("kms:GrantIsForAWSResource", "true")
    }
}

/// The outcome and the statements that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Denied by these `Deny` statements.
    ExplicitDeny(Vec<String>),
    /// Allowed by these `Allow` statements.
    Allowed(Vec<String>),
    /// No statement allows it.
    ImplicitDeny,
}

/// Evaluates `request` against `policy`.
pub fn evaluate(policy: &PolicyDocument, request: &Request) -> Decision {
    let matching = |effect: Effect| -> Vec<String> {
        policy
            .statements()
            .iter()
            .filter(|s| s.effect == effect && statement_matches(s, request))
            .map(|s| s.sid().to_owned())
            .collect()
    };
    // Any matching Deny denies, whatever allows.
    let denies = matching(Effect::Deny);
    if !denies.is_empty() {
        return Decision {
            allowed: false,
            reason: Reason::ExplicitDeny(denies),
        };
    }
    let allows = matching(Effect::Allow);
    if allows.is_empty() {
        return Decision {
            allowed: false,
            reason: Reason::ImplicitDeny,
        };
    }
    Decision {
        allowed: true,
        reason: Reason::Allowed(allows),
    }
}

fn statement_matches(statement: &Statement, request: &Request) -> bool {
    let principal_ok = match (&statement.principal, &statement.not_principal) {
        (Some(p), _) => principal_matches(p, &request.principal),
        (None, Some(np)) => !principal_matches(np, &request.principal),
        (None, None) => false,
    };
    let action_ok = match (&statement.action, &statement.not_action) {
        (Some(a), _) => any_glob(a, &request.action, true),
        (None, Some(na)) => !any_glob(na, &request.action, true),
        (None, None) => false,
    };
    let resource_ok = match (&statement.resource, &statement.not_resource) {
        (Some(r), _) => any_glob(r, &request.resource, false) || r.iter().any(|r| r == "*"),
        (None, Some(nr)) => !any_glob(nr, &request.resource, false),
        (None, None) => false,
    };
    principal_ok && action_ok && resource_ok && conditions_match(statement, request)
}

/// Whether a policy principal block names the requesting principal.
pub fn principal_matches(principal: &Principal, requester: &str) -> bool {
    principal
        .entries()
        .into_iter()
        .any(|(kind, value)| match kind {
            "AWS" => aws_principal_matches(value, requester),
            _ => value == requester,
        })
}

fn aws_principal_matches(value: &str, requester: &str) -> bool {
    if value == "*" || value == requester {
        return true;
    }
    // `arn:aws:iam::A:root` and `A` both name the whole account A.
    let named_account = match value.strip_suffix(":root") {
        Some(prefix) => prefix.rsplit(':').next(),
        None if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) => Some(value),
        None => None,
    };
    named_account.is_some_and(|a| account_of(requester) == Some(a))
}

/// The account of an IAM or STS ARN.
pub fn account_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_), Some(service), Some(_), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (matches!(service, "iam" | "sts") && account.len() == 12).then_some(account)
}

fn any_glob(patterns: &OneOrMany, value: &str, ignore_case: bool) -> bool {
    patterns.iter().any(|p| glob(p, value, ignore_case))
}

/// IAM wildcards: `*` any run of characters, `?` one character.
pub fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| {
        if ignore_case {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    };
    let (p, v) = (fold(pattern).into_bytes(), fold(value).into_bytes());
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn conditions_match(statement: &Statement, request: &Request) -> bool {
    let Some(conditions) = &statement.condition else {
        return true;
    };
    conditions.iter().all(|(operator, keys)| {
        keys.iter().all(|(key, values)| {
            let present = request.context.get(&key.to_ascii_lowercase());
            condition_holds(operator, present.map(Vec::as_slice), &values.texts())
        })
    })
}

/// One condition operator applied to the request's values for one key.
///
/// `IfExists` makes a missing key match; `ForAnyValue:` / `ForAllValues:` apply the test to
/// any / all request values; negated operators match a missing key, as in IAM. An operator
/// this evaluator does not know never matches, so an unknown condition can not widen an Allow.
fn condition_holds(operator: &str, present: Option<&[String]>, expected: &[String]) -> bool {
    let (set, rest) = match operator.split_once(':') {
        Some((set, rest)) => (Some(set), rest),
        None => (None, operator),
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    if base == "Null" {
        let want_missing = expected.iter().any(|e| e == "true");
        return present.is_none() == want_missing;
    }
    let Some(test) = value_test(base) else {
        return false;
    };
    let negated = base.contains("Not");
    let Some(values) = present.filter(|v| !v.is_empty()) else {
        return if_exists || negated || set == Some("ForAllValues");
    };
    let one = |value: &String| test(value, expected);
    match set {
        Some("ForAllValues") => values.iter().all(one),
        _ => values.iter().any(one),
    }
}

type ValueTest = fn(&String, &[String]) -> bool;

fn value_test(base: &str) -> Option<ValueTest> {
    let test: ValueTest = match base {
        "StringEquals" | "ArnEquals" => |v, e| e.iter().any(|x| x == v),
        "StringNotEquals" | "ArnNotEquals" => |v, e| e.iter().all(|x| x != v),
        "StringEqualsIgnoreCase" => |v, e| e.iter().any(|x| x.eq_ignore_ascii_case(v)),
        "StringNotEqualsIgnoreCase" => |v, e| e.iter().all(|x| !x.eq_ignore_ascii_case(v)),
        "StringLike" | "ArnLike" => |v, e| e.iter().any(|x| glob(x, v, false)),
        "StringNotLike" | "ArnNotLike" => |v, e| e.iter().all(|x| !glob(x, v, false)),
        "Bool" => |v, e| e.iter().any(|x| x.eq_ignore_ascii_case(v)),
        _ => return None,
    };
    Some(test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("kms:*", "kms:Decrypt", true));
        assert!(glob("kms:ReEncrypt*", "kms:reencryptfrom", true));
        assert!(!glob("kms:ReEncrypt*", "kms:Decrypt", true));
        assert!(glob("kms:Get?eyPolicy", "kms:GetKeyPolicy", true));
        assert!(glob("*", "", false));
        assert!(!glob("a*b", "acbd", false));
        assert!(glob("a*b*c", "aXbYbZc", false));
    }

    #[test]
    fn root_names_every_principal_of_its_account() {
        let root = Principal::aws(vec!["arn:aws:iam::111111111111:root".into()]);
        assert!(principal_matches(
            &root,
            "arn:aws:iam::111111111111:role/Admin"
        ));
        assert!(principal_matches(&root, "arn:aws:iam::111111111111:root"));
        assert!(!principal_matches(
            &root,
            "arn:aws:iam::222222222222:role/Admin"
        ));
        let bare = Principal::aws(vec!["111111111111".into()]);
        assert!(principal_matches(&bare, "arn:aws:iam::111111111111:user/u"));
        let role = Principal::aws(vec!["arn:aws:iam::111111111111:role/Admin".into()]);
        assert!(!principal_matches(
            &role,
            "arn:aws:iam::111111111111:role/Other"
        ));
    }

    #[test]
    fn condition_operators() {
        let v = |s: &str| vec![s.to_owned()];
        assert!(condition_holds("StringEquals", Some(&v("a")), &v("a")));
        assert!(!condition_holds("StringEquals", None, &v("a")));
        assert!(condition_holds("StringEqualsIfExists", None, &v("a")));
        assert!(condition_holds("StringNotEquals", None, &v("a")));
        assert!(!condition_holds("StringNotEquals", Some(&v("a")), &v("a")));
        assert!(condition_holds(
            "StringLike",
            Some(&v("rds.us-east-1.amazonaws.com")),
            &v("rds.*.amazonaws.com")
        ));
        assert!(condition_holds("Bool", Some(&v("true")), &v("true")));
        assert!(!condition_holds("Bool", None, &v("true")));
        assert!(condition_holds("Null", None, &v("true")));
        assert!(!condition_holds("Null", Some(&v("x")), &v("true")));
        assert!(
            !condition_holds("NumericLessThan", Some(&v("1")), &v("3")),
            "unknown operators never match"
        );
        let two = vec!["a".to_owned(), "b".to_owned()];
        assert!(condition_holds(
            "ForAnyValue:StringEquals",
            Some(&two),
            &v("a")
        ));
        assert!(!condition_holds(
            "ForAllValues:StringEquals",
            Some(&two),
            &v("a")
        ));
    }
}
