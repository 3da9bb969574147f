//! What IAM authorizes for each call the agents make, from the proxy's recorded requests.
//!
//! AWS authorizes one API call against several resources (DOMAIN.md §8b): a restore against
//! the new database, the snapshot, the subnet group and the option and parameter groups; a
//! create with `Tags` also against `rds:AddTagsToResource` / `kms:TagResource`; a copy under a
//! key also makes RDS call KMS with the caller's permissions (`kms:ViaService`). This module
//! turns each recorded request into those authorizations, with the condition keys the request
//! carries (`aws:RequestTag/…`, `aws:TagKeys`, `kms:BypassPolicyLockoutSafetyCheck`) and the
//! tags the resource had before the call (`aws:ResourceTag/…`), so the operator policies are
//! judged by the same evaluator as the key policies, resource by resource.
//!
//! A call on a KMS key is also decided by the key's own policy ([`kms_allows`]): a statement
//! that names the caller itself allows on its own, one that names the account (`:root`)
//! leaves the decision to the caller's IAM policies. [`walk`] plays a chain of calls against
//! one resource, each judged with the tags the calls before it left.

use std::collections::{BTreeMap, HashMap};

use rds_handoff::policy::eval::{evaluate, Reason, Request};
use rds_handoff::policy::model::{Effect, OneOrMany, Principal, Statement};
use rds_handoff::policy::PolicyDocument;

pub type Tags = BTreeMap<String, String>;

/// Condition keys an [`Authorization`] decides completely (absent means absent).
const DECIDED: &[&str] = &[
    "aws:requesttag/",
    "aws:tagkeys",
    "aws:resourcetag/",
    "kms:bypasspolicylockoutsafetycheck",
    "rds:managemasteruserpassword",
];

/// One recorded call, read.
struct Call {
    action: String,
    params: HashMap<String, String>,
    json: serde_json::Value,
}

impl Call {
    fn parse(action: &str, body: &str) -> Call {
        let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        let params = if json.is_null() {
            form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        } else {
            HashMap::new()
        };
        Call {
            action: action.to_owned(),
            params,
            json,
        }
    }

    /// A query parameter or a top-level JSON string field.
    fn get(&self, name: &str) -> Option<String> {
        self.params
            .get(name)
            .cloned()
            .or_else(|| self.json[name].as_str().map(str::to_owned))
    }

    /// The request's `Tags`, in any of the three shapes the services use.
    fn tags(&self) -> Tags {
        let mut tags = Tags::new();
        for entry in self.json["Tags"].as_array().into_iter().flatten() {
            let key = entry["TagKey"].as_str().or(entry["Key"].as_str());
            let value = entry["TagValue"].as_str().or(entry["Value"].as_str());
            if let (Some(k), Some(v)) = (key, value) {
                tags.insert(k.to_owned(), v.to_owned());
            }
        }
        for (name, key) in &self.params {
            let Some(prefix) = name.strip_suffix(".Key") else {
                continue;
            };
            if prefix.starts_with("Tags.") {
                let value = self.params.get(&format!("{prefix}.Value"));
                tags.insert(key.clone(), value.cloned().unwrap_or_default());
            }
        }
        tags
    }
}

/// The identity the agents act as in `account`, and the tags of what they made so far.
pub struct Authorizer {
    account: String,
    region: String,
    principal: String,
    /// Tags of RDS resources by ARN, as their create calls set them.
    rds_tags: HashMap<String, Tags>,
    /// Key ARN and tags for each key id, ARN or alias the calls name.
    pub keys: HashMap<String, (String, Tags)>,
    /// Key policies by key ARN: what a key's own policy grants the caller by name.
    pub key_policies: HashMap<String, PolicyDocument>,
}

impl Authorizer {
    pub fn new(account: &str, region: &str) -> Authorizer {
        Authorizer {
            account: account.to_owned(),
            region: region.to_owned(),
            principal: format!("arn:aws:iam::{account}:role/Operator"),
            rds_tags: HashMap::new(),
            keys: HashMap::new(),
            key_policies: HashMap::new(),
        }
    }

    /// The same authorizer, acting as `principal` (an IAM role or user ARN).
    pub fn acting_as(mut self, principal: &str) -> Authorizer {
        self.principal = principal.to_owned();
        self
    }

    /// Whether `identity` (the caller's IAM policy) lets `request` through, or, on a key in
    /// [`Self::key_policies`], the key's policy names the caller itself and allows it (and
    /// neither policy denies it).
    pub fn allows(&self, identity: &PolicyDocument, request: &Request) -> bool {
        let by_iam = evaluate(identity, request);
        if by_iam.allowed {
            return true;
        }
        let denied_by_iam = matches!(by_iam.reason, Reason::ExplicitDeny(_));
        let key_policy = self.key_policies.get(&request.resource);
        match key_policy {
            Some(policy) if request.action.starts_with("kms:") && !denied_by_iam => {
                let denied_by_key =
                    matches!(evaluate(policy, request).reason, Reason::ExplicitDeny(_));
                !denied_by_key && evaluate(&named_only(policy), request).allowed
            }
            _ => false,
        }
    }

    /// Every authorization the recorded calls needed, in order, each named for the report.
    pub fn authorizations(&mut self, seen: &[(String, String)]) -> Vec<(String, Request)> {
        let mut all = Vec::new();
        for (action, body) in seen {
            if action.starts_with("sts:") {
                continue;
            }
            let call = Call::parse(action, body);
            all.extend(self.of(&call));
        }
        all
    }

    /// [`Self::authorizations`] of calls each signed for its own region (`regions`, in the
    /// order of `seen`): a cross-region run's.
    pub fn authorizations_in(
        &mut self,
        seen: &[(String, String)],
        regions: &[String],
    ) -> Vec<(String, Request)> {
        let home = self.region.clone();
        let mut all = Vec::new();
        for (call, region) in seen.iter().zip(regions) {
            region.clone_into(&mut self.region);
            all.extend(self.authorizations(std::slice::from_ref(call)));
        }
        self.region = home;
        all
    }

    fn rds(&self, kind: &str, id: &str) -> String {
        if id.starts_with("arn:") {
            return id.to_owned();
        }
        format!("arn:aws:rds:{}:{}:{kind}:{id}", self.region, self.account)
    }

    fn request(&self, action: &str, resource: &str) -> Request {
        let mut request = Request::new(&self.principal, action);
        request.resource = resource.to_owned();
        request.decided = DECIDED.iter().map(|k| (*k).to_owned()).collect();
        request
    }

    /// `action` on `resource`, with the resource's known tags and the call's request tags.
    pub fn on(
        &self,
        action: &str,
        resource: &str,
        tags: &Tags,
        existing: Option<&Tags>,
    ) -> Request {
        let mut request = self.request(action, resource);
        for (k, v) in existing.into_iter().flatten() {
            request = request.with(&format!("aws:ResourceTag/{k}"), v);
        }
        if !tags.is_empty() {
            for (k, v) in tags {
                request = request.with(&format!("aws:RequestTag/{k}"), v);
            }
            request
                .context
                .insert("aws:tagkeys".into(), tags.keys().cloned().collect());
        }
        request
    }

    fn key(&self, id: &str) -> (String, Tags) {
        self.keys
            .get(id)
            .cloned()
            .unwrap_or_else(|| (id.to_owned(), Tags::new()))
    }

    /// What RDS or Secrets Manager asks KMS for with the caller's permissions.
    pub fn through(&self, service: &str, key: &str) -> Vec<Request> {
        let (arn, tags) = self.key(key);
        // A service uses a key in the key's own region.
        let region = arn.split(':').nth(3).unwrap_or(&self.region).to_owned();
        let mut requests: Vec<Request> = ["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"]
            .into_iter()
            .map(|a| {
                self.on(a, &arn, &Tags::new(), Some(&tags))
                    .via(service, &region)
            })
            .collect();
        let grant = self.on("kms:CreateGrant", &arn, &Tags::new(), Some(&tags));
        requests.push(grant.via(service, &region).for_aws_resource());
        requests
    }

    fn of(&mut self, call: &Call) -> Vec<(String, Request)> {
        let tags = call.tags();
        let name = |request: Request| {
            (
                format!("{} on {}", request.action, request.resource),
                request,
            )
        };
        let mut out: Vec<Request> = Vec::new();
        let action = call.action.as_str();
        let (service, api) = action.split_once(':').unwrap_or(("", action));
        match service {
            "rds" => self.rds_call(api, call, &tags, &mut out),
            "kms" => self.kms_call(api, call, &tags, &mut out),
            "secretsmanager" if api == "ListSecrets" => out.push(self.request(action, "*")),
            "secretsmanager" => self.secrets_call(api, call, &tags, &mut out),
            // Authorized on the list itself; EC2's describes on no resource.
            "ec2" if api == "GetManagedPrefixListEntries" => {
                let list = call.get("PrefixListId").unwrap_or_default();
                let arn = format!(
                    "arn:aws:ec2:{}:{}:prefix-list/{list}",
                    self.region, self.account
                );
                out.push(self.request(action, &arn));
            }
            "ec2" => out.push(self.request(action, "*")),
            _ => panic!("unexpected call {action}"),
        }
        out.into_iter().map(name).collect()
    }

    fn rds_call(&mut self, api: &str, call: &Call, tags: &Tags, out: &mut Vec<Request>) {
        let get = |name: &str| call.get(name).unwrap_or_default();
        let action = format!("rds:{api}");
        let mut created: Vec<String> = Vec::new();
        let mut resources: Vec<String> = Vec::new();
        let with_default = |value: String, fallback: &str| {
            if value.is_empty() {
                fallback.to_owned()
            } else {
                value
            }
        };
        match api {
            "DescribeDBInstances" => {
                resources.push(self.rds("db", &with_default(get("DBInstanceIdentifier"), "*")))
            }
            "DescribeDBClusters" => {
                resources.push(self.rds("cluster", &with_default(get("DBClusterIdentifier"), "*")))
            }
            "DescribeDBSnapshotAttributes" => {
                resources.push(self.rds("snapshot", &get("DBSnapshotIdentifier")))
            }
            "DescribeDBClusterSnapshotAttributes" => {
                resources.push(self.rds("cluster-snapshot", &get("DBClusterSnapshotIdentifier")))
            }
            "DescribeOptionGroups" => resources.push(self.rds("og", &get("OptionGroupName"))),
            "DescribeDBParameterGroups" => {
                resources.push(self.rds("pg", &get("DBParameterGroupName")))
            }
            "DescribeDBClusterParameterGroups" => {
                resources.push(self.rds("cluster-pg", &get("DBClusterParameterGroupName")))
            }
            // Judged on the instance alone: whether AWS also authorizes the snapshot that
            // `DBSnapshotIdentifier` names (as `rds:CreateDBSnapshot`) is not verified here.
            "StopDBInstance" => resources.push(self.rds("db", &get("DBInstanceIdentifier"))),
            "StopDBCluster" => resources.push(self.rds("cluster", &get("DBClusterIdentifier"))),
            "DescribeDBSubnetGroups" => {
                resources.push(self.rds("subgrp", &get("DBSubnetGroupName")))
            }
            "DescribeDBSnapshots" | "DescribeDBClusterSnapshots" | "DescribeAccountAttributes" => {
                resources.push("*".into())
            }
            "CreateDBSnapshot" => {
                resources.push(self.rds("db", &get("DBInstanceIdentifier")));
                created.push(self.rds("snapshot", &get("DBSnapshotIdentifier")));
            }
            "CreateDBClusterSnapshot" => {
                resources.push(self.rds("cluster", &get("DBClusterIdentifier")));
                created.push(self.rds("cluster-snapshot", &get("DBClusterSnapshotIdentifier")));
            }
            "CopyDBSnapshot" | "CopyDBClusterSnapshot" => {
                let kind = if api == "CopyDBSnapshot" {
                    "snapshot"
                } else {
                    "cluster-snapshot"
                };
                let prefix = if api == "CopyDBSnapshot" {
                    "DBSnapshotIdentifier"
                } else {
                    "DBClusterSnapshotIdentifier"
                };
                resources.push(self.rds(kind, &get(&format!("Source{prefix}"))));
                created.push(self.rds(kind, &get(&format!("Target{prefix}"))));
                if let Some(key) = call.get("KmsKeyId") {
                    out.extend(self.through("rds", &key));
                }
            }
            "ModifyDBSnapshotAttribute" | "DeleteDBSnapshot" => {
                resources.push(self.rds("snapshot", &get("DBSnapshotIdentifier")))
            }
            "ModifyDBClusterSnapshotAttribute" | "DeleteDBClusterSnapshot" => {
                resources.push(self.rds("cluster-snapshot", &get("DBClusterSnapshotIdentifier")))
            }
            "RestoreDBInstanceFromDBSnapshot" => {
                created.push(self.rds("db", &get("DBInstanceIdentifier")));
                resources.push(self.rds("snapshot", &get("DBSnapshotIdentifier")));
                resources
                    .push(self.rds("subgrp", &with_default(get("DBSubnetGroupName"), "default")));
                resources.push(self.rds(
                    "og",
                    &with_default(get("OptionGroupName"), "default:engine"),
                ));
                resources.push(self.rds(
                    "pg",
                    &with_default(get("DBParameterGroupName"), "default.engine"),
                ));
            }
            "RestoreDBClusterFromSnapshot" => {
                created.push(self.rds("cluster", &get("DBClusterIdentifier")));
                let snapshot = get("SnapshotIdentifier");
                resources.push(self.rds("cluster-snapshot", &snapshot));
                resources
                    .push(self.rds("subgrp", &with_default(get("DBSubnetGroupName"), "default")));
                resources.push(self.rds("og", "default:engine"));
                resources.push(self.rds(
                    "cluster-pg",
                    &with_default(get("DBClusterParameterGroupName"), "default.engine"),
                ));
                if let Some(key) = call.get("KmsKeyId") {
                    out.extend(self.through("rds", &key));
                }
            }
            "CreateDBInstance" => {
                created.push(self.rds("db", &get("DBInstanceIdentifier")));
                resources.push(self.rds("cluster", &get("DBClusterIdentifier")));
            }
            "DeleteDBCluster" => resources.push(self.rds("cluster", &get("DBClusterIdentifier"))),
            "AddTagsToResource" => {
                // On the resource as it is, then it carries the tags too.
                let resource = get("ResourceName");
                let existing = self.rds_tags.get(&resource).cloned();
                out.push(self.on(&action, &resource, tags, existing.as_ref()));
                let mut now = existing.unwrap_or_default();
                now.extend(tags.clone());
                self.rds_tags.insert(resource, now);
            }
            "ModifyDBInstance" | "ModifyDBCluster" => {
                let (kind, id) = if api == "ModifyDBInstance" {
                    ("db", get("DBInstanceIdentifier"))
                } else {
                    ("cluster", get("DBClusterIdentifier"))
                };
                resources.push(self.rds(kind, &id));
                if call.get("ManageMasterUserPassword").as_deref() == Some("true") {
                    out.extend(self.rds_managed_secret(call));
                }
            }
            other => panic!("no authorization model for rds:{other}: add it to tests/src/iam.rs"),
        }
        for resource in &resources {
            let existing = self.rds_tags.get(resource).cloned();
            out.push(self.on(&action, resource, tags, existing.as_ref()));
        }
        for resource in created {
            out.push(self.on(&action, &resource, tags, None));
            if !tags.is_empty() {
                out.push(self.on("rds:AddTagsToResource", &resource, tags, None));
            }
            self.rds_tags.insert(resource, tags.clone());
        }
    }

    /// RDS creates an `rds!…` secret with the caller's permissions.
    fn rds_managed_secret(&self, call: &Call) -> Vec<Request> {
        let secret = format!(
            "arn:aws:secretsmanager:{}:{}:secret:rds!db-0a1b2c3d-AbCdEf",
            self.region, self.account
        );
        let mut out = vec![
            self.request("secretsmanager:CreateSecret", &secret),
            self.request("secretsmanager:TagResource", &secret),
        ];
        if let Some(key) = call.get("MasterUserSecretKmsKeyId") {
            let (arn, tags) = self.key(&key);
            out.push(self.on("kms:DescribeKey", &arn, &Tags::new(), Some(&tags)));
            out.extend(self.through("secretsmanager", &key));
        }
        out
    }

    fn kms_call(&mut self, api: &str, call: &Call, tags: &Tags, out: &mut Vec<Request>) {
        let action = format!("kms:{api}");
        let bypass = call.json["BypassPolicyLockoutSafetyCheck"].as_bool();
        let with_bypass = |request: Request| match bypass {
            Some(b) => request.with("kms:BypassPolicyLockoutSafetyCheck", &b.to_string()),
            None => request,
        };
        match api {
            "ListKeys" => out.push(self.request(&action, "*")),
            "CreateKey" => {
                out.push(with_bypass(self.on(&action, "*", tags, None)));
                // Tags given to CreateKey are authorized as kms:TagResource on the new key.
                if !tags.is_empty() {
                    let new_key = format!("arn:aws:kms:{}:{}:key/new", self.region, self.account);
                    out.push(self.on("kms:TagResource", &new_key, tags, None));
                }
            }
            "CreateAlias" => {
                let alias = call.get("AliasName").unwrap_or_default();
                let alias = format!("arn:aws:kms:{}:{}:{alias}", self.region, self.account);
                let (key, key_tags) = self.key(&call.get("TargetKeyId").unwrap_or_default());
                out.push(self.request(&action, &alias));
                out.push(self.on(&action, &key, &Tags::new(), Some(&key_tags)));
            }
            _ => {
                let (key, key_tags) = self.key(&call.get("KeyId").unwrap_or_default());
                out.push(with_bypass(self.on(&action, &key, tags, Some(&key_tags))));
            }
        }
    }

    fn secrets_call(&mut self, api: &str, call: &Call, tags: &Tags, out: &mut Vec<Request>) {
        let action = format!("secretsmanager:{api}");
        let id = call
            .get("SecretId")
            .or_else(|| call.get("Name"))
            .unwrap_or_default();
        let arn = if id.starts_with("arn:") {
            id
        } else {
            format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}-AbCdEf",
                self.region, self.account
            )
        };
        out.push(self.on(&action, &arn, tags, None));
        if api == "CreateSecret" {
            if let Some(key) = call.get("KmsKeyId") {
                out.extend(self.through("secretsmanager", &key));
            }
        }
    }
}

/// The key policy without what it leaves to IAM: the account (`arn:…:root`, or a bare account
/// id) is taken out of every Allow statement's principals, and a statement naming nobody else
/// is dropped. What is left grants by name, whatever the caller's IAM policies say.
pub fn named_only(policy: &PolicyDocument) -> PolicyDocument {
    let delegates = |value: &str| {
        value.ends_with(":root") || (value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()))
    };
    let statements: Vec<Statement> = policy
        .statements()
        .iter()
        .cloned()
        .filter_map(|mut statement| {
            if statement.effect == Effect::Deny {
                return Some(statement);
            }
            if let Some(Principal::Typed(map)) = &mut statement.principal {
                for values in map.values_mut() {
                    let kept: Vec<String> = values
                        .iter()
                        .filter(|&v| !delegates(v))
                        .map(str::to_owned)
                        .collect();
                    *values = OneOrMany::Many(kept);
                }
                map.retain(|_, values| values.iter().next().is_some());
                if map.is_empty() {
                    return None;
                }
            }
            Some(statement)
        })
        .collect();
    PolicyDocument::new("named-only", statements)
}

/// KMS's decision on `request` for a key whose policy is `key_policy`, asked by a principal of
/// the key's account whose IAM policy is `identity` (KMS developer guide, `key-policy-default`,
/// `iam-policies`): an explicit Deny in either refuses; otherwise a key policy statement that
/// names the principal itself allows, and one that names the account allows only if the IAM
/// policy allows too. A key with KMS's default policy (the account root, `kms:*`) is decided
/// by the IAM policy alone.
pub fn kms_allows(
    key_policy: &PolicyDocument,
    identity: &PolicyDocument,
    request: &Request,
) -> bool {
    let key_side = evaluate(key_policy, request);
    let iam_side = evaluate(identity, request);
    let denied = |reason: &Reason| matches!(reason, Reason::ExplicitDeny(_));
    if denied(&key_side.reason) || denied(&iam_side.reason) {
        return false;
    }
    evaluate(&named_only(key_policy), request).allowed || (key_side.allowed && iam_side.allowed)
}

/// The requests a step is authorized as, given the resource's tags before it.
pub type Authorizations = Box<dyn Fn(&Tags) -> Vec<Request>>;

/// One call of a chain against one resource.
pub struct Step {
    /// What the call is, for the report.
    pub call: String,
    /// The authorizations AWS makes for the call (every one must pass), built from the
    /// resource's tags as the calls before it left them.
    pub authorizations: Authorizations,
    /// Tags the call sets on the resource if it goes through.
    pub sets: Tags,
    /// Tag keys the call removes if it goes through.
    pub removes: Vec<String>,
}

impl Step {
    pub fn new(call: &str, authorizations: impl Fn(&Tags) -> Vec<Request> + 'static) -> Step {
        Step {
            call: call.to_owned(),
            authorizations: Box::new(authorizations),
            sets: Tags::new(),
            removes: Vec::new(),
        }
    }

    /// The call sets these tags if it goes through.
    pub fn setting(mut self, tags: &Tags) -> Step {
        self.sets = tags.clone();
        self
    }

    /// The call removes these tag keys if it goes through.
    pub fn removing(mut self, keys: &[&str]) -> Step {
        self.removes = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }
}

/// Plays `steps` in order against a resource tagged `tags`: each call is judged by `allows` on
/// every authorization it needs, with the tags the calls before it left; a call that goes
/// through changes the tags. Returns the calls that went through, and the tags at the end.
pub fn walk(tags: &Tags, steps: &[Step], allows: &dyn Fn(&Request) -> bool) -> (Vec<String>, Tags) {
    let mut tags = tags.clone();
    let mut through = Vec::new();
    for step in steps {
        let requests = (step.authorizations)(&tags);
        assert!(!requests.is_empty(), "{}: no authorization", step.call);
        if requests.iter().all(allows) {
            through.push(step.call.clone());
            tags.extend(step.sets.clone());
            for key in &step.removes {
                tags.remove(key);
            }
        }
    }
    (through, tags)
}
