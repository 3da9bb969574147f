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
//! not see. A role is named by its account and name, whatever its path (IAM role names are
//! unique in an account, and an STS session ARN carries no path). The decision names the
//! statements that decided it.
//!
//! Some conditions cannot be decided here: operators this evaluator does not implement
//! (numeric, date, IP, binary, unknown ones) and keys the request does not model
//! (`aws:SourceIp`, `aws:SecureTransport`, an absent `aws:PrincipalOrgID`, …). How they count
//! depends on the question, the [`Stance`]: to *prove* that something is allowed (the lockout
//! check, the matrix) an undecided Allow does not match and an undecided Deny does; to ask what
//! *may* be allowed (the audit) it is the other way round. Either way the answer fails closed.

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
    /// Prefixes of further condition keys (lowercased) this request decides: absent means
    /// absent, as for the keys every request models.
    pub decided: Vec<String>,
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
            decided: Vec::new(),
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

/// Condition keys every [`Request`] decides, present or absent: an absent one is truly absent
/// (a direct call has no `kms:ViaService`). Any other key absent from the request is undecided.
const MODELLED_KEYS: &[&str] = &[
    "kms:viaservice",
    "kms:grantisforawsresource",
    "kms:calleraccount",
    "aws:principalaccount",
    "aws:principalarn",
];

/// How undecidable conditions count (see the module's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stance {
    /// Allowed only if proven: undecided Allow statements do not match, undecided Denies do.
    Prove,
    /// Allowed unless disproven: undecided Allow statements match, undecided Denies do not.
    May,
    /// As [`Stance::May`], with every condition of an Allow statement counted as undecided:
    /// what a principal could do under some condition.
    AnyCondition,
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

/// Evaluates `request` against `policy`, allowing only what it can prove.
pub fn evaluate(policy: &PolicyDocument, request: &Request) -> Decision {
    evaluate_as(policy, request, Stance::Prove)
}

/// Evaluates `request` against `policy` in the given [`Stance`].
pub fn evaluate_as(policy: &PolicyDocument, request: &Request, stance: Stance) -> Decision {
    let matching = |effect: Effect| -> Vec<String> {
        policy
            .statements()
            .iter()
            .filter(|s| s.effect == effect)
            .filter(|s| {
                let undecided_counts = match effect {
                    Effect::Allow => stance != Stance::Prove,
                    Effect::Deny => stance == Stance::Prove,
                };
                let ignore_conditions = stance == Stance::AnyCondition && effect == Effect::Allow;
                match statement_matches(s, request, ignore_conditions) {
                    Some(matched) => matched,
                    None => undecided_counts,
                }
            })
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

/// `Some(matches)`, or `None` when everything but an undecidable condition matches.
fn statement_matches(
    statement: &Statement,
    request: &Request,
    ignore_conditions: bool,
) -> Option<bool> {
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
    if !(principal_ok && action_ok && resource_ok) {
        return Some(false);
    }
    if ignore_conditions {
        return Some(true);
    }
    conditions_match(statement, request)
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
    if let (Some(named), Some(asking)) = (role_of(value), role_of(requester)) {
        return named == asking;
    }
    // `arn:aws:iam::A:root` and `A` both name the whole account A.
    let named_account = match value.strip_suffix(":root") {
        Some(prefix) => prefix.rsplit(':').next(),
        None if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) => Some(value),
        None => None,
    };
    named_account.is_some_and(|a| account_of(requester) == Some(a))
}

/// `(account, role name)` of an IAM role ARN, its path left out.
fn role_of(arn: &str) -> Option<(&str, &str)> {
    let account = account_of(arn)?;
    let path = arn.split(':').nth(5)?.strip_prefix("role/")?;
    Some((account, path.rsplit('/').next()?))
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

/// All conditions hold (`Some(true)`), one fails (`Some(false)`), or none fails and one is
/// undecidable (`None`).
fn conditions_match(statement: &Statement, request: &Request) -> Option<bool> {
    let Some(conditions) = &statement.condition else {
        return Some(true);
    };
    let mut undecided = false;
    for (operator, keys) in conditions {
        for (key, values) in keys {
            let key = key.to_ascii_lowercase();
            let present = request.context.get(&key);
            let modelled = MODELLED_KEYS.contains(&key.as_str())
                || request.decided.iter().any(|p| key.starts_with(p.as_str()));
            if present.is_none() && !modelled {
                undecided = true;
                continue;
            }
            match condition_holds(operator, present.map(Vec::as_slice), &values.texts()) {
                Some(false) => return Some(false),
                Some(true) => {}
                None => undecided = true,
            }
        }
    }
    (!undecided).then_some(true)
}

/// Every condition operator IAM documents, before `IfExists` and set prefixes.
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

/// Whether IAM knows the operator (`ForAnyValue:StringLike`, `StringEqualsIfExists`, …).
pub fn known_operator(operator: &str) -> bool {
    let rest = match operator.split_once(':') {
        Some(("ForAnyValue" | "ForAllValues", rest)) => rest,
        Some(_) => return false,
        None => operator,
    };
    let base = match rest.strip_suffix("IfExists") {
        Some(base) if base != "Null" => base,
        _ => rest,
    };
    OPERATORS.contains(&base)
}

/// One condition operator applied to the request's values for one key; `None` when this
/// evaluator cannot decide it (an operator it does not implement).
///
/// `IfExists` makes a missing key match; `ForAnyValue:` / `ForAllValues:` apply the test to
/// any / all request values; negated operators match a missing key, as in IAM.
fn condition_holds(
    operator: &str,
    present: Option<&[String]>,
    expected: &[String],
) -> Option<bool> {
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
        return Some(present.is_none() == want_missing);
    }
    let test = value_test(base)?;
    let negated = base.contains("Not");
    let Some(values) = present.filter(|v| !v.is_empty()) else {
        return Some(if_exists || negated || set == Some("ForAllValues"));
    };
    let one = |value: &String| test(value, expected);
    Some(match set {
        Some("ForAllValues") => values.iter().all(one),
        _ => values.iter().any(one),
    })
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
        let sso = Principal::aws(vec![
            "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0a1b".into(),
        ]);
        assert!(
            principal_matches(
                &sso,
                "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_0a1b"
            ),
            "a role with a path is the role its session names"
        );
        assert!(!principal_matches(
            &sso,
            "arn:aws:iam::222222222222:role/AWSReservedSSO_Admin_0a1b"
        ));
        assert!(!principal_matches(
            &sso,
            "arn:aws:iam::111111111111:role/AWSReservedSSO_Other_0a1b"
        ));
    }

    #[test]
    fn operators_iam_knows() {
        for known in [
            "StringEquals",
            "ForAnyValue:StringLike",
            "ForAllValues:StringEquals",
            "NumericLessThanIfExists",
            "IpAddress",
            "Null",
        ] {
            assert!(known_operator(known), "{known}");
        }
        for unknown in [
            "StringEqual",
            "NullIfExists",
            "ForSomeValues:StringEquals",
            "Foo",
        ] {
            assert!(!known_operator(unknown), "{unknown}");
        }
    }

    #[test]
    fn condition_operators() {
        let v = |s: &str| vec![s.to_owned()];
        let condition_holds = |op: &str, present: Option<&[String]>, expected: &[String]| {
            condition_holds(op, present, expected).unwrap_or(false)
        };
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
        assert_eq!(
            super::condition_holds("NumericLessThan", Some(&v("1")), &v("3")),
            None,
            "operators the evaluator does not implement are undecided"
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
